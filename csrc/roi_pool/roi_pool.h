// roi_pool.h — the per-element body of RoI max pooling (Fast R-CNN), shared by CPU and CUDA.
//
// One element is one output cell (RoI k, channel c, bin ph, pw): the maximum of the feature
// map over the bin, and where it was (the argmax switch the backward pass routes through).
// The arithmetic is torchvision's, which inherits Caffe's legacy conventions:
//   * RoI corners are scaled to feature coordinates and *rounded* (half away from zero);
//   * the RoI size is inclusive, end - start + 1, at least 1 ("malformed RoIs become 1×1");
//   * bin (ph, pw) spans rows [floor(ph·bh), ceil((ph+1)·bh)) with bh = roi_h / pooled_h (in
//     the dtype), shifted by the RoI start and clipped to the map: neighbouring bins may
//     overlap by one row, and a bin wholly outside the map is empty (output 0, argmax -1);
//   * the maximum starts at -FLT_MAX and takes the first strictly greater value, scanning rows
//     then columns: ties go to the first position, NaNs are never picked.
// Guards: a RoI whose batch index is not in [0, batch) or whose scaled corners are not finite
// or beyond ±2^40 pools nothing (zeros, argmax -1), so no NaN/inf ever becomes an index.
#pragma once

#include <cfloat>

#include "../common/roi_common.h"

namespace minidl {

template <typename T>
struct RoiPoolGeometry {
  bool valid;
  index_t batch;             // image of the RoI
  index_t start_h, start_w;  // rounded top-left corner in feature coordinates
  T bin_h, bin_w;            // bin size (RoI size / pooled size)
};

template <typename T>
MINIDL_HD RoiPoolGeometry<T> roi_pool_geometry(const T* roi, T spatial_scale, index_t batch_size,
                                               index_t pooled_h, index_t pooled_w) {
  RoiPoolGeometry<T> g{false, 0, 0, 0, T(0), T(0)};
  const T limit = T(1099511627776.0);  // 2^40: far beyond any feature map, far below overflow
  const T x1 = roi[1] * spatial_scale, y1 = roi[2] * spatial_scale;
  const T x2 = roi[3] * spatial_scale, y2 = roi[4] * spatial_scale;
  const index_t batch = roi_batch_index(roi, batch_size);
  if (batch < 0 || !within(x1, limit) || !within(y1, limit) || !within(x2, limit) ||
      !within(y2, limit))
    return g;
  g.valid = true;
  g.batch = batch;
  g.start_w = static_cast<index_t>(round_half_away(x1));
  g.start_h = static_cast<index_t>(round_half_away(y1));
  const index_t end_w = static_cast<index_t>(round_half_away(x2));
  const index_t end_h = static_cast<index_t>(round_half_away(y2));
  const index_t roi_w = end_w - g.start_w + 1 > 1 ? end_w - g.start_w + 1 : 1;
  const index_t roi_h = end_h - g.start_h + 1 > 1 ? end_h - g.start_h + 1 : 1;
  g.bin_h = static_cast<T>(roi_h) / static_cast<T>(pooled_h);
  g.bin_w = static_cast<T>(roi_w) / static_cast<T>(pooled_w);
  return g;
}

// The window of bin (ph, pw): rows [h0, h1), columns [w0, w1); empty when h1 <= h0 or w1 <= w0.
struct PoolWindow {
  index_t h0, h1, w0, w1;
};

template <typename T>
MINIDL_HD PoolWindow roi_pool_window(const RoiPoolGeometry<T>& g, index_t ph, index_t pw,
                                     index_t height, index_t width) {
  if (!g.valid) return PoolWindow{0, 0, 0, 0};
  PoolWindow win;
  win.h0 = clamp_index(static_cast<index_t>(floor_of(static_cast<T>(ph) * g.bin_h)) + g.start_h, height);
  win.h1 = clamp_index(static_cast<index_t>(ceil_of(static_cast<T>(ph + 1) * g.bin_h)) + g.start_h, height);
  win.w0 = clamp_index(static_cast<index_t>(floor_of(static_cast<T>(pw) * g.bin_w)) + g.start_w, width);
  win.w1 = clamp_index(static_cast<index_t>(ceil_of(static_cast<T>(pw + 1) * g.bin_w)) + g.start_w, width);
  return win;
}

// One output cell: max of `plane` (one channel of one image, height×width) over the window.
template <typename T>
MINIDL_HD void roi_pool_cell(const T* plane, index_t width, const PoolWindow& win, T* out,
                             index_t* argmax) {
  const bool empty = win.h1 <= win.h0 || win.w1 <= win.w0;
  T best = empty ? T(0) : static_cast<T>(-FLT_MAX);
  index_t best_index = -1;  // -1: nothing pooled, the backward pass routes nothing
  for (index_t h = win.h0; h < win.h1; ++h)
    for (index_t w = win.w0; w < win.w1; ++w)
      if (plane[h * width + w] > best) best = plane[h * width + w], best_index = h * width + w;
  *out = best;
  *argmax = best_index;
}

// Backward of one cell: its gradient goes to the input position that won the max. `add` is
// `+=` on the CPU and in the deterministic CUDA path, atomicAdd in the fast CUDA path.
// An argmax outside [0, plane_size) (-1, or a corrupted switch) routes nothing.
template <typename T, typename Add>
MINIDL_HD void roi_pool_cell_backward(T* grad_plane, index_t plane_size, index_t argmax, T grad,
                                      Add add) {
  if (argmax >= 0 && argmax < plane_size) add(grad_plane + argmax, grad);
}

}  // namespace minidl
