// direct_conv_bind_cpu.cpp — minidl._C's binding of the direct K×K convolution
// (minidl/kernels/direct_conv.py, minidl/functional/conv_direct.py).
//
// As every binding (csrc/bind_cpu.cpp): arrays (inputs, then the caller's outputs), then
// options; dtypes, shapes and every derived size checked before any memory is touched. One
// array is _C's alone: `padded`, the caller's scratch for the fast form's zero-padded copy of x
// (N, C, H + 2·pad_h, W + 2·pad_w) — reused by the caller across calls, where an allocation
// here would page-fault afresh on every call. The CUDA kernels read x directly and take none.
#include "common/bind_cpu.h"
#include "direct_conv/direct_conv_checks.h"
#include "direct_conv/direct_conv_cpu.h"

namespace {

// x (N, C, H, W) of dtype T and the checked geometry for F K×K filters.
template <typename T>
minidl::DirectConvGeometry geometry_of(const py::array& x, index_t filters, index_t kernel,
                                       index_t pad_h, index_t pad_w, index_t stride, const char* op) {
  minidl::check_array<T>(x, "x");
  minidl::check_ndim(x, 4, "x");
  return minidl::checked_direct_conv_geometry(x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                              filters, kernel, pad_h, pad_w, stride, op);
}

template <typename T>
T* padded_of(py::array& padded, const minidl::DirectConvGeometry& g, const char* op) {
  return output_of<T>(padded, {g.batch, g.channels, g.height + 2 * g.pad_h, g.width + 2 * g.pad_w},
                      op, "padded");
}

// w (F, C, K, K) of dtype T: K from its shape (the geometry checks it is 3, 5, 7 or 9).
template <typename T>
index_t square_kernel_of(const py::array& w, const char* op, const char* name) {
  minidl::check_array<T>(w, name);
  minidl::check(w.ndim() == 4 && w.shape(2) == w.shape(3),
                std::string(op) + ": " + name + " must have shape (F, C, K, K), got " + minidl::shape_str(w));
  return w.shape(2);
}

template <typename T>
void direct_conv(py::array x, py::array w, py::object bias, py::array y, py::array padded,
                 index_t pad_h, index_t pad_w, index_t stride, bool fast) {
  const index_t kernel = square_kernel_of<T>(w, "direct_conv", "w");
  const auto g = geometry_of<T>(x, w.shape(0), kernel, pad_h, pad_w, stride, "direct_conv");
  minidl::check(w.shape(1) == g.channels, "direct_conv: w has " + std::to_string(w.shape(1)) +
                                              " input channels, x has " + std::to_string(g.channels));
  const T* bias_ptr = optional_bias_of<T>(bias, g.filters, "direct_conv");
  T* out = output_of<T>(y, {g.batch, g.filters, g.out_h, g.out_w}, "direct_conv", "y");
  T* scratch = padded_of<T>(padded, g, "direct_conv");
  auto x_ptr = static_cast<const T*>(x.data());
  auto w_ptr = static_cast<const T*>(w.data());
  py::gil_scoped_release release;
  if (fast)
    minidl::direct_conv_cpu_fast<T>(x_ptr, w_ptr, bias_ptr, g, scratch, out);
  else
    minidl::direct_conv_cpu<T>(x_ptr, w_ptr, bias_ptr, g, out);
}

template <typename T>
void direct_conv_weight_grad(py::array x, py::array dy, py::array dW, py::array padded,
                             index_t pad_h, index_t pad_w, index_t stride, bool fast) {
  minidl::check_array<T>(dy, "dy");
  minidl::check_ndim(dy, 4, "dy");
  const index_t kernel = square_kernel_of<T>(dW, "direct_conv_weight_grad", "dW");
  const auto g = geometry_of<T>(x, dy.shape(1), kernel, pad_h, pad_w, stride, "direct_conv_weight_grad");
  minidl::check(dy.shape(0) == g.batch && dy.shape(2) == g.out_h && dy.shape(3) == g.out_w,
                "direct_conv_weight_grad: dy has shape " + minidl::shape_str(dy) + ", expected (" +
                    std::to_string(g.batch) + ", F, " + std::to_string(g.out_h) + ", " +
                    std::to_string(g.out_w) + ")");
  T* out = output_of<T>(dW, {g.filters, g.channels, kernel, kernel}, "direct_conv_weight_grad", "dW");
  T* scratch = padded_of<T>(padded, g, "direct_conv_weight_grad");
  auto x_ptr = static_cast<const T*>(x.data());
  auto dy_ptr = static_cast<const T*>(dy.data());
  py::gil_scoped_release release;
  if (fast)
    minidl::direct_conv_weight_grad_cpu_fast<T>(x_ptr, dy_ptr, g, scratch, out);
  else
    minidl::direct_conv_weight_grad_cpu<T>(x_ptr, dy_ptr, g, out);
}

}  // namespace

void bind_direct_conv_cpu(py::module_& m) {
  // Whether the fast form runs AVX2 + FMA code on this CPU (float32); elsewhere it runs the
  // textbook loops (an attribute, like `openmp`: a fact about this build and CPU, not a kernel).
  m.attr("direct_conv_avx2") = minidl::direct_conv_cpu_fast_available();
  // The widest vectors its forward may use: a setting (tests and benchmarks compare AVX-512 with
  // AVX2 on a CPU that has both), not a kernel — so it has no CUDA twin.
  m.def(
      "direct_conv_set_lanes",
      [](index_t lanes) {
        minidl::check(lanes == 8 || lanes == 16, "direct_conv_set_lanes: lanes must be 8 (AVX2) or "
                                                 "16 (AVX-512 where the CPU has it), got " + std::to_string(lanes));
        return minidl::direct_conv_cpu_fast_set_lanes(lanes);
      },
      py::arg("lanes"),
      "Let the fast forward use vectors of up to `lanes` floats from now on (16: AVX-512 where the "
      "CPU has it, the default; 8: AVX2); returns the previous setting.");
  m.def("direct_conv_lanes", &minidl::direct_conv_cpu_fast_lanes,
        "The widest vectors the fast forward runs on this CPU now: 16 (AVX-512), 8 (AVX2) or 1.");
  m.def(
      "direct_conv",
      [](py::array x, py::array w, py::object bias, py::array y, py::array padded, index_t pad_h,
         index_t pad_w, index_t stride, bool fast) {
        minidl::dispatch_float(x, "x", [&](auto t) {
          direct_conv<decltype(t)>(x, w, bias, y, padded, pad_h, pad_w, stride, fast);
        });
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"), py::arg("padded"),
      py::arg("pad_h"), py::arg("pad_w"), py::arg("stride"), py::arg("fast") = true,
      "y = conv2d(x, w, bias, stride 1 or 2, padding) for KxK filters (K = 3, 5, 7, 9), without a "
      "column matrix; x (N, C, H, W), w (F, C, K, K), y (N, F, out_h, out_w) and the scratch padded "
      "(N, C, H + 2 pad_h, W + 2 pad_w) written in place.");
  m.def(
      "direct_conv_weight_grad",
      [](py::array x, py::array dy, py::array dW, py::array padded, index_t pad_h, index_t pad_w,
         index_t stride, bool fast) {
        minidl::dispatch_float(x, "x", [&](auto t) {
          direct_conv_weight_grad<decltype(t)>(x, dy, dW, padded, pad_h, pad_w, stride, fast);
        });
      },
      py::arg("x"), py::arg("dy"), py::arg("dW"), py::arg("padded"), py::arg("pad_h"),
      py::arg("pad_w"), py::arg("stride"), py::arg("fast") = true,
      "dW[f, c, ky, kx] = sum over n, oy, ox of dy[n, f, oy, ox] * x[n, c, s*oy+ky-pad_h, s*ox+kx-pad_w] "
      "(stride s = 1 or 2); dW (F, C, K, K), K from its shape, and the scratch padded written in place.");
}
