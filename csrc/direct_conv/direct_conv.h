// direct_conv.h — a K×K convolution (K = 3, 5, 7 or 9) of stride s = 1 or 2 computed directly,
// without a column matrix: the per-element bodies shared by the CPU and CUDA launchers
// (minidl/kernels/direct_conv.py).
//
//   forward      y[n][f][oy][ox] = bias[f] + Σ_c Σ_ky Σ_kx w[f][c][ky][kx] · x[n][c][s·oy+ky−ph][s·ox+kx−pw]
//   weight grad  dW[f][c][ky][kx] = Σ_n Σ_oy Σ_ox dy[n][f][oy][ox] · x[n][c][s·oy+ky−ph][s·ox+kx−pw]
//
// with x read as zero outside its H×W (the padding). The input gradient needs no third body:
// for stride 1 it is the forward of dy with the filters rotated by 180° and their in/out channels
// swapped, padding K − 1 − p (minidl/functional/conv_dual.py's identity) — the caller does that; for
// stride 2 it is a transpose convolution, left to col2im.
//
// One element of the forward is one output value (the CUDA kernel: one thread each); one
// element of the weight gradient is one filter tap dW[f][c][ky][kx], a sum over the whole batch.
// The sums run in the order written above (c, ky, kx; then n, oy, ox), one product at a time.
// The fast CPU form (direct_conv_cpu_fast.cpp) computes the same sums eight outputs at a time
// with fused multiply-adds, so it agrees with these bodies to rounding, not bit for bit.
#pragma once

#include "../common/host_device.h"

namespace minidl {

struct DirectConvGeometry {
  index_t batch, channels, height, width;  // x: (N, C, H, W)
  index_t filters;                         // w: (F, C, K, K)
  index_t kernel;                          // K: 3, 5, 7 or 9
  index_t pad_h, pad_w;                    // each in [0, K − 1]
  index_t stride;                          // 1 or 2, along both axes
  index_t out_h, out_w;                    // (H + 2·pad_h − K) / stride + 1, and for W
};

inline DirectConvGeometry make_direct_conv_geometry(index_t batch, index_t channels, index_t height,
                                                    index_t width, index_t filters, index_t kernel,
                                                    index_t pad_h, index_t pad_w, index_t stride) {
  return {batch, channels, height, width, filters, kernel, pad_h, pad_w, stride,
          (height + 2 * pad_h - kernel) / stride + 1, (width + 2 * pad_w - kernel) / stride + 1};
}

// x[n][c][iy][ix], or 0 where (iy, ix) lies in the padding.
template <typename T>
MINIDL_HD T direct_conv_input(const T* x, const DirectConvGeometry& g, index_t n, index_t c,
                              index_t iy, index_t ix) {
  if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) return T(0);
  return x[((n * g.channels + c) * g.height + iy) * g.width + ix];
}

// One output value y[n][f][oy][ox] (bias may be null).
template <typename T>
MINIDL_HD T direct_conv_value(const T* x, const T* w, const T* bias, const DirectConvGeometry& g,
                              index_t n, index_t f, index_t oy, index_t ox) {
  const index_t k = g.kernel;
  T sum = bias ? bias[f] : T(0);
  for (index_t c = 0; c < g.channels; ++c) {
    const T* tap = w + (f * g.channels + c) * k * k;
    for (index_t ky = 0; ky < k; ++ky)
      for (index_t kx = 0; kx < k; ++kx)
        sum += tap[ky * k + kx] *
               direct_conv_input(x, g, n, c, g.stride * oy + ky - g.pad_h, g.stride * ox + kx - g.pad_w);
  }
  return sum;
}

// One filter tap of the weight gradient, dW[f][c][ky][kx]: dy (N, F, out_h, out_w) against
// the input values that tap saw.
template <typename T>
MINIDL_HD T direct_conv_weight_grad_value(const T* x, const T* dy, const DirectConvGeometry& g,
                                          index_t f, index_t c, index_t ky, index_t kx) {
  T sum = T(0);
  for (index_t n = 0; n < g.batch; ++n) {
    const T* plane = dy + (n * g.filters + f) * g.out_h * g.out_w;
    for (index_t oy = 0; oy < g.out_h; ++oy)
      for (index_t ox = 0; ox < g.out_w; ++ox)
        sum += plane[oy * g.out_w + ox] *
               direct_conv_input(x, g, n, c, g.stride * oy + ky - g.pad_h, g.stride * ox + kx - g.pad_w);
  }
  return sum;
}

}  // namespace minidl
