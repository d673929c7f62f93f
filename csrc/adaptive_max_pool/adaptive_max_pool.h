// adaptive_max_pool.h — the per-element body of adaptive max pooling, shared by CPU and CUDA.
//
// Adaptive pooling fixes the *output* size instead of the window: a plane of height×width is
// cut into out_h×out_w bins, whatever its size, and each output cell is the maximum over its
// bin. That is the spatial pyramid pooling of SPP-net (He et al. 2014): a fixed-length vector
// from a window of any size. The bins are PyTorch's (aten/src/ATen/native/AdaptivePooling.h):
//   * bin i of n along an axis of length `size` spans [floor(i·size/n), ceil((i+1)·size/n)),
//     computed in integers (exact: no float rounding, unlike roi_pool's bin_h = roi_h / pooled_h);
//     neighbouring bins overlap by one row when n does not divide size, and when n > size
//     several bins cover the same row — no bin is ever empty;
//   * the maximum starts at -inf with the bin's first position and takes a later value when it
//     is strictly greater *or NaN* (PyTorch's rule: ties keep the first, NaN propagates — the
//     last NaN of the bin wins).
// argmax is the flat index h * width + w into the plane; the backward pass adds each cell's
// gradient there.
#pragma once

#include <cmath>  // INFINITY (a constant both g++ and nvcc's device code accept)

#include "../common/host_device.h"

namespace minidl {

// floor(i * size / n) and ceil((i + 1) * size / n) in PyTorch's overflow-safe integer forms:
// i * size is never formed when i / n and i % n split it (start), and (i+1)*size <= n*size,
// which the bindings check fits in int64 (end).
MINIDL_HD index_t adaptive_bin_start(index_t i, index_t n, index_t size) {
  return (i / n) * size + ((i % n) * size) / n;
}
MINIDL_HD index_t adaptive_bin_end(index_t i, index_t n, index_t size) {
  return 1 + ((i + 1) * size - 1) / n;
}

// The maximum of one bin [h0, h1) × [w0, w1) of a plane `width` values wide, and where it was.
template <typename T>
MINIDL_HD void adaptive_max_over_bin(const T* plane, index_t width, index_t h0, index_t h1,
                                     index_t w0, index_t w1, T* out, index_t* argmax) {
  T best = -static_cast<T>(INFINITY);
  index_t best_index = h0 * width + w0;  // an all -inf bin reports its first position, as PyTorch
  for (index_t h = h0; h < h1; ++h)
    for (index_t w = w0; w < w1; ++w) {
      const T v = plane[h * width + w];
      if (v > best || v != v) best = v, best_index = h * width + w;  // v != v: v is NaN
    }
  *out = best;
  *argmax = best_index;
}

// One output cell (oh, ow) of one plane (height×width): max over its bin, and where it was.
template <typename T>
MINIDL_HD void adaptive_max_pool_cell(const T* plane, index_t height, index_t width,
                                      index_t out_h, index_t out_w, index_t oh, index_t ow,
                                      T* out, index_t* argmax) {
  adaptive_max_over_bin(plane, width, adaptive_bin_start(oh, out_h, height),
                        adaptive_bin_end(oh, out_h, height), adaptive_bin_start(ow, out_w, width),
                        adaptive_bin_end(ow, out_w, width), out, argmax);
}

// Backward of one plane: every cell's gradient goes to its argmax, cells in row-major order.
// One caller owns the whole plane (an OpenMP thread on the CPU, a CUDA thread on the GPU), so
// there are no races and the sums are always added in the same order: deterministic, and the
// CPU and GPU results are bit for bit the same. An argmax outside [0, height*width) (a
// corrupted switch) routes nothing.
template <typename T>
MINIDL_HD void adaptive_max_pool_plane_backward(const T* grad_output, const index_t* argmax,
                                                index_t cells, index_t plane_size,
                                                T* grad_plane) {
  for (index_t p = 0; p < cells; ++p)
    if (argmax[p] >= 0 && argmax[p] < plane_size) grad_plane[argmax[p]] += grad_output[p];
}

}  // namespace minidl
