// adaptive_max_pool_bind_cpu.cpp — minidl._C's binding of adaptive max pooling (minidl/kernels/adaptive_max_pool.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "adaptive_max_pool/adaptive_max_pool_checks.h"
#include "adaptive_max_pool/adaptive_max_pool_cpu.h"

template <typename T>
py::tuple adaptive_max_pool2d_forward(py::array input, index_t out_h, index_t out_w) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  const index_t n = input.shape(0), c = input.shape(1), h = input.shape(2), w = input.shape(3);
  minidl::check_adaptive_pool_sizes(n, c, h, w, out_h, out_w, "adaptive_max_pool2d");
  py::array_t<T> output({n, c, out_h, out_w});
  py::array_t<index_t> argmax({n, c, out_h, out_w});
  auto in = static_cast<const T*>(input.data());
  T* out = output.mutable_data();
  index_t* am = argmax.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::adaptive_max_pool2d_forward_cpu<T>(in, n, c, h, w, out_h, out_w, out, am);
  }
  return py::make_tuple(output, argmax);
}

template <typename T>
py::array adaptive_max_pool2d_backward(py::array grad_output, py::array argmax, index_t height,
                                       index_t width) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  minidl::check_array<index_t>(argmax, "argmax");
  minidl::check(argmax.ndim() == 4 && std::equal(argmax.shape(), argmax.shape() + 4, grad_output.shape()),
                "adaptive_max_pool2d backward: argmax shape " + minidl::shape_str(argmax) +
                    " differs from grad_output shape " + minidl::shape_str(grad_output));
  const index_t n = grad_output.shape(0), c = grad_output.shape(1);
  const index_t out_h = grad_output.shape(2), out_w = grad_output.shape(3);
  minidl::check_adaptive_pool_sizes(n, c, height, width, out_h, out_w,
                                    "adaptive_max_pool2d backward");
  py::array_t<T> grad_input = zeros_like_plane<T>(n, c, height, width);
  auto go = static_cast<const T*>(grad_output.data());
  auto am = static_cast<const index_t*>(argmax.data());
  T* gi = grad_input.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::adaptive_max_pool2d_backward_cpu<T>(go, am, n, c, height, width, out_h, out_w, gi);
  }
  return grad_input;
}

void bind_adaptive_max_pool_cpu(py::module_& m) {
  m.def(
      "adaptive_max_pool2d_forward",
      [](py::array input, index_t out_h, index_t out_w) {
        py::tuple result;
        minidl::dispatch_float(input, "input", [&](auto t) {
          result = adaptive_max_pool2d_forward<decltype(t)>(input, out_h, out_w);
        });
        return result;
      },
      py::arg("input"), py::arg("out_h"), py::arg("out_w"),
      "(output, argmax), both (N, C, out_h, out_w); argmax int64 = h * W + w. PyTorch's bins.");
  m.def(
      "adaptive_max_pool2d_backward",
      [](py::array grad_output, py::array argmax, index_t height, index_t width) {
        py::array result;
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          result = adaptive_max_pool2d_backward<decltype(t)>(grad_output, argmax, height, width);
        });
        return result;
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("height"), py::arg("width"),
      "grad_input (N, C, height, width); deterministic.");
}
