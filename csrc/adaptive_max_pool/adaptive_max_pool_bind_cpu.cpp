// adaptive_max_pool_bind_cpu.cpp — minidl._C's binding of adaptive max pooling (minidl/kernels/adaptive_max_pool.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "adaptive_max_pool/adaptive_max_pool_checks.h"
#include "adaptive_max_pool/adaptive_max_pool_cpu.h"

// output and argmax (N, C, out_h, out_w), allocated by the caller: out_h/w are their sizes.
template <typename T>
void adaptive_max_pool2d_forward(py::array input, py::array output, py::array argmax, bool fast) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  minidl::check_ndim(output, 4, "output");
  const index_t n = input.shape(0), c = input.shape(1), h = input.shape(2), w = input.shape(3);
  const index_t out_h = output.shape(2), out_w = output.shape(3);
  minidl::check_adaptive_pool_sizes(n, c, h, w, out_h, out_w, "adaptive_max_pool2d");
  T* out = output_of<T>(output, {n, c, out_h, out_w}, "adaptive_max_pool2d", "output");
  index_t* am = output_of<index_t>(argmax, {n, c, out_h, out_w}, "adaptive_max_pool2d", "argmax");
  auto in = static_cast<const T*>(input.data());
  py::gil_scoped_release release;
  if (fast)
    minidl::adaptive_max_pool2d_forward_cpu_fast<T>(in, n, c, h, w, out_h, out_w, out, am);
  else
    minidl::adaptive_max_pool2d_forward_cpu<T>(in, n, c, h, w, out_h, out_w, out, am);
}

// grad_input (N, C, H, W), zeroed by the caller: the gradients are added into it.
template <typename T>
void adaptive_max_pool2d_backward(py::array grad_output, py::array argmax, py::array grad_input) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  minidl::check_array<index_t>(argmax, "argmax");
  minidl::check(argmax.ndim() == 4 && std::equal(argmax.shape(), argmax.shape() + 4, grad_output.shape()),
                "adaptive_max_pool2d backward: argmax shape " + minidl::shape_str(argmax) +
                    " differs from grad_output shape " + minidl::shape_str(grad_output));
  minidl::check_ndim(grad_input, 4, "grad_input");
  const index_t n = grad_output.shape(0), c = grad_output.shape(1);
  const index_t out_h = grad_output.shape(2), out_w = grad_output.shape(3);
  const index_t height = grad_input.shape(2), width = grad_input.shape(3);
  minidl::check_adaptive_pool_sizes(n, c, height, width, out_h, out_w,
                                    "adaptive_max_pool2d backward");
  T* gi = output_of<T>(grad_input, {n, c, height, width}, "adaptive_max_pool2d backward",
                       "grad_input");
  auto go = static_cast<const T*>(grad_output.data());
  auto am = static_cast<const index_t*>(argmax.data());
  py::gil_scoped_release release;
  minidl::adaptive_max_pool2d_backward_cpu<T>(go, am, n, c, height, width, out_h, out_w, gi);
}

void bind_adaptive_max_pool_cpu(py::module_& m) {
  m.def(
      "adaptive_max_pool2d_forward",
      [](py::array input, py::array output, py::array argmax, bool fast) {
        minidl::dispatch_float(input, "input", [&](auto t) {
          adaptive_max_pool2d_forward<decltype(t)>(input, output, argmax, fast);
        });
      },
      py::arg("input"), py::arg("output"), py::arg("argmax"), py::arg("fast") = true,
      "Writes output and argmax (int64 = h * W + w), both (N, C, out_h, out_w). PyTorch's bins.");
  m.def(
      "adaptive_max_pool2d_backward",
      [](py::array grad_output, py::array argmax, py::array grad_input) {
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          adaptive_max_pool2d_backward<decltype(t)>(grad_output, argmax, grad_input);
        });
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("grad_input"),
      "Adds the gradients into grad_input (N, C, height, width), zeroed by the caller; "
      "deterministic.");
}
