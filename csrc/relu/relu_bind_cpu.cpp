// relu_bind_cpu.cpp — minidl._C's binding of relu: max(x, 0) and its gradient
// (minidl/kernels/relu.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "relu/relu_cpu.h"

template <typename T>
void relu_forward(py::array x, py::array out) {
  minidl::check_array<T>(x, "x");
  check_shape_like<T>(out, x, "relu_forward", "out");
  minidl::check(out.writeable(), "relu_forward: out must be writeable");
  auto x_ptr = static_cast<const T*>(x.data());
  auto out_ptr = static_cast<T*>(out.mutable_data());
  const index_t count = x.size();
  py::gil_scoped_release release;
  minidl::relu_forward_cpu<T>(x_ptr, count, out_ptr);
}

template <typename T>
void relu_backward(py::array grad_output, py::array output, py::array grad_input) {
  minidl::check_array<T>(grad_output, "grad_output");
  check_shape_like<T>(output, grad_output, "relu_backward", "output");
  check_shape_like<T>(grad_input, grad_output, "relu_backward", "grad_input");
  minidl::check(grad_input.writeable(), "relu_backward: grad_input must be writeable");
  auto grad_ptr = static_cast<const T*>(grad_output.data());
  auto output_ptr = static_cast<const T*>(output.data());
  auto grad_input_ptr = static_cast<T*>(grad_input.mutable_data());
  const index_t count = grad_output.size();
  py::gil_scoped_release release;
  minidl::relu_backward_cpu<T>(grad_ptr, output_ptr, count, grad_input_ptr);
}

void bind_relu_cpu(py::module_& m) {
  m.def(
      "relu_forward",
      [](py::array x, py::array out) {
        minidl::dispatch_float(x, "x", [&](auto t) { relu_forward<decltype(t)>(x, out); });
      },
      py::arg("x"), py::arg("out"), "out = max(x, 0); float32 or float64, any shape.");
  m.def(
      "relu_backward",
      [](py::array grad_output, py::array output, py::array grad_input) {
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          relu_backward<decltype(t)>(grad_output, output, grad_input);
        });
      },
      py::arg("grad_output"), py::arg("output"), py::arg("grad_input"),
      "grad_input = grad_output * (output > 0), output being the forward's out.");
}
