// im2col.h — the per-element bodies of im2col and col2im, shared by the CPU and CUDA launchers.
//
// Lecture 8: a convolution is a matrix multiplication. im2col copies every receptive field of
// the input into one column of a matrix, so that conv(x) = W_matrix @ cols (one GEMM); col2im
// is its transpose (adjoint): it sums each column entry back into the pixel it came from.
//
// Column layout (rows = what one filter weight sees, columns = output pixels):
//
//   cols[row][col],  row = (c * kernel_h + i) * kernel_w + j         (C * kh * kw rows)
//                    col = (n * out_h + oy) * out_w + ox              (N * out_h * out_w columns)
//                    at cols + row * col_stride + col (col_stride >= N * out_h * out_w)
//   cols[row][col] = x[n, c, oy * stride_h - pad_h + i * dilation_h,
//                            ox * stride_w - pad_w + j * dilation_w]  (0 outside the image)
//
// With the weight (F, C, kh, kw) read as an (F, C*kh*kw) matrix, the convolution of a whole
// chunk of images is ONE matrix product W @ cols of shape (F, N*out_h*out_w): one big GEMM
// instead of N small ones (that is why the batch axis sits inside the columns).
//
// col2im is written as a *gather*: one input pixel walks the kernel taps (i, j) in order and
// sums the column entries that were copied from it. No two threads write the same pixel, so
// no atomics are needed and the sum is deterministic — and in exactly the order of the NumPy
// reference (minidl/kernels/im2col.py), so both agree bit for bit.
#pragma once

#include "../common/host_device.h"

namespace minidl {

// Everything the bodies need to know about one 2-D convolution (input plane, kernel, output).
struct ConvGeometry {
  index_t batch, channels, height, width;  // the image side (N, C, H, W)
  index_t kernel_h, kernel_w;
  index_t stride_h, stride_w;
  index_t pad_h, pad_w;
  index_t dilation_h, dilation_w;
  index_t out_h, out_w;                    // (H + 2 pad - dilation (k - 1) - 1) / stride + 1
  index_t tap_step_h, tap_step_w;          // stride / gcd(stride, dilation): see first_tap
  // Elements from one row of cols to the next: N * out_h * out_w when cols is contiguous, more
  // when its rows are padded (the CPU pads rows whose length is a multiple of 4 KB, so that
  // the rows do not all map to the same cache sets: minidl/kernels/im2col.py).
  index_t col_stride;
};

inline index_t greatest_common_divisor(index_t a, index_t b) {
  return b == 0 ? a : greatest_common_divisor(b, a % b);
}

// The geometry of a convolution of an (N, C, H, W) input; out_h/out_w from the usual formula
// (callers check that they are >= 1, i.e. that the kernel fits in the padded input).
inline ConvGeometry make_conv_geometry(index_t batch, index_t channels, index_t height,
                                       index_t width, index_t kernel_h, index_t kernel_w,
                                       index_t stride_h, index_t stride_w, index_t pad_h,
                                       index_t pad_w, index_t dilation_h, index_t dilation_w) {
  ConvGeometry g{batch,    channels, height, width,      kernel_h,   kernel_w, stride_h, stride_w,
                 pad_h,    pad_w,    dilation_h, dilation_w, 0,        0,        1,        1};
  g.out_h = (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  g.out_w = (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  g.tap_step_h = stride_h / greatest_common_divisor(stride_h, dilation_h);
  g.tap_step_w = stride_w / greatest_common_divisor(stride_w, dilation_w);
  g.col_stride = batch * g.out_h * g.out_w;  // contiguous; a launcher may set a padded one
  return g;
}

// Value of one column entry: the pixel that kernel tap (i, j) sees for output pixel (oy, ox)
// of image n, channel c — or 0 in the zero padding. A launcher that already knows the pixel is
// inside the image (the interior of a row) asks for kCheckBounds = false: the same index math,
// without the test. kStride = 1 or 2 fixes the stride at compile time (0 reads it from g): with
// both, the compiler turns a run of calls along a row into a plain (strided) vector copy.
template <typename T, bool kCheckBounds = true, int kStride = 0>
MINIDL_HD T im2col_element(const T* x, const ConvGeometry& g, index_t n, index_t c, index_t i,
                           index_t j, index_t oy, index_t ox) {
  const index_t sh = kStride ? kStride : g.stride_h, sw = kStride ? kStride : g.stride_w;
  const index_t iy = oy * sh - g.pad_h + i * g.dilation_h;
  const index_t ix = ox * sw - g.pad_w + j * g.dilation_w;
  if (kCheckBounds && !(iy >= 0 && iy < g.height && ix >= 0 && ix < g.width)) return T(0);
  return x[((n * g.channels + c) * g.height + iy) * g.width + ix];
}

// The kernel taps k that land on input coordinate p (p = o * stride - pad + k * dilation for
// some output coordinate o) form an arithmetic progression: the first one is in [0, step) and
// the next ones follow every step = stride / gcd(stride, dilation) taps (ConvGeometry holds
// it). So col2im visits only the taps that contribute — a quarter of them for stride 2 —
// instead of testing all of them. kStride = 1 or 2 fixes the stride at compile time (the
// divisions become nothing or shifts); kStride = 0 reads `stride`. Returns the first tap, or
// kernel_size when no tap lands on p.
template <int kStride>
MINIDL_HD index_t first_tap(index_t p, index_t stride, index_t pad, index_t dilation,
                            index_t kernel_size, index_t step) {
  const index_t s = kStride ? kStride : stride;
  index_t k = 0;
  while (s != 1 && k < step && k < kernel_size && (p + pad - k * dilation) % s != 0) ++k;
  return k < step ? k : kernel_size;
}

// Value of one input pixel (n, c, y, x) after col2im: the sum, over the taps (i, j) in row-major
// order, of the column entries copied from this pixel (the gather form of the transpose).
template <typename T, int kStride = 0>
MINIDL_HD T col2im_pixel(const T* cols, const ConvGeometry& g, index_t n, index_t c, index_t y,
                         index_t x) {
  const index_t row_length = g.col_stride;
  const index_t sh = kStride ? kStride : g.stride_h, sw = kStride ? kStride : g.stride_w;
  const index_t step_i = kStride == 1 ? 1 : g.tap_step_h;
  const index_t step_j = kStride == 1 ? 1 : g.tap_step_w;
  const index_t i0 = first_tap<kStride>(y, sh, g.pad_h, g.dilation_h, g.kernel_h, step_i);
  const index_t j0 = first_tap<kStride>(x, sw, g.pad_w, g.dilation_w, g.kernel_w, step_j);
  T sum = T(0);
  for (index_t i = i0; i < g.kernel_h; i += step_i) {
    const index_t ty = y + g.pad_h - i * g.dilation_h;  // = oy * stride
    if (ty < 0) break;                                  // (decreases with i)
    const index_t oy = ty / sh;
    if (oy >= g.out_h) continue;
    const T* taps_of_row = cols + (c * g.kernel_h + i) * g.kernel_w * row_length +
                           (n * g.out_h + oy) * g.out_w;
    for (index_t j = j0; j < g.kernel_w; j += step_j) {
      const index_t tx = x + g.pad_w - j * g.dilation_w;
      if (tx < 0) break;
      const index_t ox = tx / sw;
      if (ox < g.out_w) sum += taps_of_row[j * row_length + ox];
    }
  }
  return sum;
}

}  // namespace minidl
