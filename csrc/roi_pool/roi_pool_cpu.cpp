// roi_pool_cpu.cpp — OpenMP loops over RoIs (forward) and channels (backward) calling the
// shared body (roi_pool.h).
#include "roi_pool_cpu.h"

#include <vector>

#include "../common/parallel.h"
#include "roi_pool.h"

namespace minidl {

template <typename T>
void roi_pool_forward_cpu(const T* input, index_t batch, index_t channels, index_t height,
                          index_t width, const T* rois, index_t num_rois, double spatial_scale,
                          index_t pooled_h, index_t pooled_w, T* output, index_t* argmax) {
  const T scale = static_cast<T>(spatial_scale);  // torchvision scales in the dtype too
  const index_t plane = height * width, cells = pooled_h * pooled_w;
  if (num_rois * channels * cells == 0) return;  // nothing to pool (no table to build)
  // One RoI per iteration: its bins are computed once, then pooled channel by channel (the
  // RoI's part of one plane stays in the L1 cache for all its bins). The table of bins is the
  // one allocation: through a FirstError, which keeps a bad_alloc inside the region.
  FirstError error;
#pragma omp parallel if (num_rois * channels * cells > 16384)
  {
    std::vector<PoolWindow> windows;
    error.run([&] { windows.resize(cells); });
#pragma omp for schedule(dynamic, 1)
    for (index_t k = 0; k < num_rois; ++k) error.run([&] {
      const RoiPoolGeometry<T> g = roi_pool_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w);
      for (index_t p = 0; p < cells; ++p)
        windows[p] = roi_pool_window(g, p / pooled_w, p % pooled_w, height, width);
      const T* image = input + (g.valid ? g.batch : 0) * channels * plane;
      for (index_t c = 0; c < channels; ++c) {
        const index_t first = (k * channels + c) * cells;
        for (index_t p = 0; p < cells; ++p)
          roi_pool_cell(image + c * plane, width, windows[p], output + first + p, argmax + first + p);
      }
    });
  }
  error.rethrow();
}

template <typename T>
void roi_pool_backward_cpu(const T* grad_output, const index_t* argmax, const T* rois,
                           index_t num_rois, index_t batch, index_t channels, index_t height,
                           index_t width, index_t pooled_h, index_t pooled_w, T* grad_input) {
  const index_t plane = height * width, cells = pooled_h * pooled_w;
  const PlainAdd add;
  // Channel c of every image belongs to one thread, which adds RoI after RoI: no two threads
  // write the same address and the order of the sums never changes (bit-reproducible).
#pragma omp parallel for schedule(static) if (num_rois * channels * cells > 16384)
  for (index_t c = 0; c < channels; ++c)
    for (index_t k = 0; k < num_rois; ++k) {
      const index_t b = roi_batch_index(rois + 5 * k, batch);
      if (b < 0) continue;
      T* grad_plane = grad_input + (b * channels + c) * plane;
      const index_t first = (k * channels + c) * cells;
      for (index_t p = 0; p < cells; ++p)
        roi_pool_cell_backward(grad_plane, plane, argmax[first + p], grad_output[first + p], add);
    }
}

template void roi_pool_forward_cpu<float>(const float*, index_t, index_t, index_t, index_t,
                                          const float*, index_t, double, index_t, index_t, float*,
                                          index_t*);
template void roi_pool_forward_cpu<double>(const double*, index_t, index_t, index_t, index_t,
                                           const double*, index_t, double, index_t, index_t,
                                           double*, index_t*);
template void roi_pool_backward_cpu<float>(const float*, const index_t*, const float*, index_t,
                                           index_t, index_t, index_t, index_t, index_t, index_t,
                                           float*);
template void roi_pool_backward_cpu<double>(const double*, const index_t*, const double*, index_t,
                                            index_t, index_t, index_t, index_t, index_t, index_t,
                                            double*);
}  // namespace minidl
