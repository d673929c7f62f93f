// adaptive_max_pool_bind_cuda.cpp — minidl._C_cuda's binding of the adaptive_max_pool launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "adaptive_max_pool/adaptive_max_pool_checks.h"
#include "adaptive_max_pool/adaptive_max_pool_cuda.h"

void bind_adaptive_max_pool_cuda(py::module_& m) {
  m.def(
      "adaptive_max_pool2d_forward",
      [](ptr_t input, ptr_t output, ptr_t argmax, index_t batch, index_t channels, index_t height,
         index_t width, index_t out_h, index_t out_w, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_adaptive_pool_sizes(batch, channels, height, width, out_h, out_w,
                                          "adaptive_max_pool2d");
        check_launch(batch * channels * out_h * out_w, "adaptive_max_pool2d");  // a thread per cell
        check_pointers(size, {{input, "input"}, {output, "output"}});
        check_pointers(8, {{argmax, "argmax"}});
        py::gil_scoped_release release;
        minidl::adaptive_max_pool2d_forward_cuda(input, batch, channels, height, width, out_h,
                                                 out_w, output, argmax, dtype_code, stream);
      },
      py::arg("input"), py::arg("output"), py::arg("argmax"), py::arg("batch"),
      py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("out_h"), py::arg("out_w"),
      py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "adaptive_max_pool2d_backward",
      [](ptr_t grad_output, ptr_t argmax, ptr_t grad_input, index_t batch, index_t channels,
         index_t height, index_t width, index_t out_h, index_t out_w, int dtype_code,
         ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_adaptive_pool_sizes(batch, channels, height, width, out_h, out_w,
                                          "adaptive_max_pool2d backward");
        check_launch(batch * channels, "adaptive_max_pool2d backward");  // a thread per plane
        check_pointers(size, {{grad_output, "grad_output"}, {grad_input, "grad_input"}});
        check_pointers(8, {{argmax, "argmax"}});
        py::gil_scoped_release release;
        minidl::adaptive_max_pool2d_backward_cuda(grad_output, argmax, batch, channels, height,
                                                  width, out_h, out_w, grad_input, dtype_code,
                                                  stream);
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("grad_input"), py::arg("batch"),
      py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("out_h"), py::arg("out_w"),
      py::arg("dtype_code"), py::arg("stream"));
}
