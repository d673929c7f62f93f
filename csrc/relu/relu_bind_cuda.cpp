// relu_bind_cuda.cpp — minidl._C_cuda's binding of the relu launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "relu/relu_cuda.h"

static void check_count(index_t count, const std::string& op) {
  minidl::check(count >= 0, op + ": count must be >= 0, got " + std::to_string(count));
  check_launch(count, op);
}

void bind_relu_cuda(py::module_& m) {
  m.def(
      "relu_forward",
      [](ptr_t x, ptr_t out, index_t count, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_count(count, "relu_forward");
        check_pointers(size, {{x, "x"}, {out, "out"}});
        py::gil_scoped_release release;
        minidl::relu_forward_cuda(x, out, count, dtype_code, stream);
      },
      py::arg("x"), py::arg("out"), py::arg("count"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "relu_backward",
      [](ptr_t grad_output, ptr_t output, ptr_t grad_input, index_t count, int dtype_code,
         ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_count(count, "relu_backward");
        check_pointers(size, {{grad_output, "grad_output"}, {output, "output"},
                              {grad_input, "grad_input"}});
        py::gil_scoped_release release;
        minidl::relu_backward_cuda(grad_output, output, grad_input, count, dtype_code, stream);
      },
      py::arg("grad_output"), py::arg("output"), py::arg("grad_input"), py::arg("count"),
      py::arg("dtype_code"), py::arg("stream"));
}
