// roi_align.h — the per-element body of RoIAlign (Mask R-CNN), shared by CPU and CUDA.
//
// RoIAlign avoids RoI pooling's rounding: each output cell (RoI k, channel c, bin ph, pw) is
// the average of the feature map *bilinearly interpolated* at a regular grid of sample points
// inside the bin. The arithmetic is torchvision's:
//   * corners are scaled to feature coordinates (in the dtype); aligned=True shifts them by
//     -0.5 so that pixel centres sit at integer + 0.5 (the "half-pixel" correction); with
//     aligned=False a RoI is at least 1×1 (the legacy behaviour);
//   * bin size = RoI size / pooled size; the sample grid is sampling_ratio² points per bin, or
//     when sampling_ratio <= 0, ceil(bin_h) × ceil(bin_w) points (adaptive) — capped here at
//     kMaxSamplingGrid per axis (torchvision has no cap: a RoI tens of thousands of feature
//     pixels tall would make it loop for minutes);
//   * sample (iy, ix) of bin (ph, pw) is at y = start_h + ph·bin_h + (iy + 0.5)·bin_h / grid_h;
//   * a sample with y < -1 or y > height (or x likewise) contributes 0; otherwise y is clamped
//     to [0, height - 1] and interpolated between rows floor(y) and floor(y) + 1;
//   * the cell is the sum over samples divided by the number of samples (at least 1).
// Guards: a RoI with a batch index outside [0, batch) or a non-finite (or beyond ±2^40)
// scaled corner, and every NaN sample point, contribute 0 — no NaN ever becomes an index.
#pragma once

#include "../common/roi_common.h"

namespace minidl {

constexpr index_t kMaxSamplingGrid = 256;

template <typename T>
struct RoiAlignGeometry {
  bool valid;
  index_t batch;
  T start_h, start_w;      // top-left corner in feature coordinates
  T bin_h, bin_w;          // bin size
  index_t grid_h, grid_w;  // sample points per bin along each axis
  T count;                 // grid_h * grid_w, at least 1: the average's divisor
};

template <typename T>
MINIDL_HD RoiAlignGeometry<T> roi_align_geometry(const T* roi, T spatial_scale, index_t batch_size,
                                                 index_t pooled_h, index_t pooled_w,
                                                 index_t sampling_ratio, bool aligned) {
  RoiAlignGeometry<T> g{false, 0, T(0), T(0), T(0), T(0), 0, 0, T(1)};
  const T limit = T(1099511627776.0);  // 2^40
  const T offset = aligned ? T(0.5) : T(0);
  const T x1 = roi[1] * spatial_scale - offset, y1 = roi[2] * spatial_scale - offset;
  const T x2 = roi[3] * spatial_scale - offset, y2 = roi[4] * spatial_scale - offset;
  g.batch = roi_batch_index(roi, batch_size);
  if (g.batch < 0 || !within(x1, limit) || !within(y1, limit) || !within(x2, limit) ||
      !within(y2, limit))
    return g;
  g.valid = true;
  g.start_w = x1, g.start_h = y1;
  T roi_w = x2 - x1, roi_h = y2 - y1;
  if (!aligned) {  // legacy: malformed RoIs are forced to 1×1
    roi_w = roi_w < T(1) ? T(1) : roi_w;
    roi_h = roi_h < T(1) ? T(1) : roi_h;
  }
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  auto grid = [&](T bin) -> index_t {  // adaptive: ceil(bin), clamped to [0, kMaxSamplingGrid]
    if (sampling_ratio > 0) return sampling_ratio;
    const T n = ceil_of(bin);
    return n <= T(0) ? 0 : (n >= static_cast<T>(kMaxSamplingGrid) ? kMaxSamplingGrid : static_cast<index_t>(n));
  };
  g.grid_h = grid(g.bin_h), g.grid_w = grid(g.bin_w);
  g.count = static_cast<T>(g.grid_h * g.grid_w > 1 ? g.grid_h * g.grid_w : 1);
  return g;
}

// Linear interpolation at `pos` along one axis of `size` pixels: RoIAlign's boundary rules.
// A point below -1 or above `size` is outside (contributes 0); otherwise it is clamped into
// [0, size - 1] and split between pixels low and high = low + 1 (both the last pixel at the end).
template <typename T>
struct LinearTap {
  bool valid;
  index_t low, high;
  T w_low, w_high;
};

template <typename T>
MINIDL_HD LinearTap<T> linear_tap(T pos, index_t size) {
  // Written as !(inside) so that NaN, for which every comparison is false, lands here.
  if (!(pos >= T(-1) && pos <= static_cast<T>(size)) || size <= 0)
    return LinearTap<T>{false, 0, 0, T(0), T(0)};
  if (pos <= T(0)) pos = T(0);
  index_t low = static_cast<index_t>(pos), high;
  if (low >= size - 1) {  // on or past the last pixel: interpolate it with itself
    high = low = size - 1;
    pos = static_cast<T>(low);
  } else {
    high = low + 1;
  }
  const T frac = pos - static_cast<T>(low);
  return LinearTap<T>{true, low, high, T(1) - frac, frac};
}

// Bilinear interpolation at (y, x) of a height×width plane = the product of two linear taps.
template <typename T>
struct BilinearTap {
  bool valid;                  // false: the point is outside the map, it contributes 0
  index_t i00, i01, i10, i11;  // (y_low, x_low), (y_low, x_high), (y_high, x_low), (y_high, x_high)
  T w00, w01, w10, w11;
};

template <typename T>
MINIDL_HD BilinearTap<T> bilinear_tap(T y, T x, index_t height, index_t width) {
  const LinearTap<T> ty = linear_tap(y, height), tx = linear_tap(x, width);
  BilinearTap<T> t{false, 0, 0, 0, 0, T(0), T(0), T(0), T(0)};
  if (!ty.valid || !tx.valid) return t;
  t.valid = true;
  t.i00 = ty.low * width + tx.low, t.i01 = ty.low * width + tx.high;
  t.i10 = ty.high * width + tx.low, t.i11 = ty.high * width + tx.high;
  t.w00 = ty.w_low * tx.w_low, t.w01 = ty.w_low * tx.w_high;
  t.w10 = ty.w_high * tx.w_low, t.w11 = ty.w_high * tx.w_high;
  return t;
}

// Position of sample i (of `grid`) inside bin p, along one axis: start + p·bin + (i + 0.5)·bin / grid
// (torchvision's order of operations, in the dtype).
template <typename T>
MINIDL_HD T sample_position(T start, T bin, index_t grid, index_t p, index_t i) {
  return start + static_cast<T>(p) * bin + (static_cast<T>(i) + T(0.5)) * bin / static_cast<T>(grid);
}

// The tap of sample (iy, ix) of bin (ph, pw).
template <typename T>
MINIDL_HD BilinearTap<T> roi_align_tap(const RoiAlignGeometry<T>& g, index_t ph, index_t pw,
                                       index_t iy, index_t ix, index_t height, index_t width) {
  return bilinear_tap(sample_position(g.start_h, g.bin_h, g.grid_h, ph, iy),
                      sample_position(g.start_w, g.bin_w, g.grid_w, pw, ix), height, width);
}

// The interpolated value of `plane` at a tap (0 for an invalid tap).
template <typename T>
MINIDL_HD T tap_value(const T* plane, const BilinearTap<T>& t) {
  return t.valid ? t.w00 * plane[t.i00] + t.w01 * plane[t.i01] + t.w10 * plane[t.i10] +
                       t.w11 * plane[t.i11]
                 : T(0);
}

// Backward of one sample: d cell / d plane[i] = w_i / count, times the cell's gradient, whose
// share `share` = grad / count the caller computed once per cell.
template <typename T, typename Add>
MINIDL_HD void tap_backward(T* grad_plane, const BilinearTap<T>& t, T share, Add add) {
  if (!t.valid) return;
  add(grad_plane + t.i00, share * t.w00);
  add(grad_plane + t.i01, share * t.w01);
  add(grad_plane + t.i10, share * t.w10);
  add(grad_plane + t.i11, share * t.w11);
}

// One output cell, forward: the average of the samples of bin (ph, pw) on one channel plane.
template <typename T>
MINIDL_HD T roi_align_cell(const T* plane, const RoiAlignGeometry<T>& g, index_t ph, index_t pw,
                           index_t height, index_t width) {
  T sum = T(0);
  for (index_t iy = 0; iy < g.grid_h; ++iy)
    for (index_t ix = 0; ix < g.grid_w; ++ix)
      sum += tap_value(plane, roi_align_tap(g, ph, pw, iy, ix, height, width));
  return g.valid ? sum / g.count : T(0);
}

// One output cell, backward: spread `grad` over the cell's samples' bilinear taps.
template <typename T, typename Add>
MINIDL_HD void roi_align_cell_backward(T* grad_plane, const RoiAlignGeometry<T>& g, index_t ph,
                                       index_t pw, index_t height, index_t width, T grad, Add add) {
  if (!g.valid) return;
  const T share = grad / g.count;
  for (index_t iy = 0; iy < g.grid_h; ++iy)
    for (index_t ix = 0; ix < g.grid_w; ++ix)
      tap_backward(grad_plane, roi_align_tap(g, ph, pw, iy, ix, height, width), share, add);
}

}  // namespace minidl
