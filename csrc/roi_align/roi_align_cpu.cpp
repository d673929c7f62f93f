// roi_align_cpu.cpp — RoIAlign on the CPU with the shared body (roi_align.h).
//
// The bilinear taps of a bin depend on the RoI and the bin, not on the channel. The CUDA
// kernels recompute them in every thread (arithmetic is cheap there); here the taps of one
// cell are computed once by roi_align_tap, kept in a small table, and applied to every
// channel — with the same expressions as roi_align_cell / roi_align_cell_backward, so the
// results are the ones those bodies give.
#include "roi_align_cpu.h"

#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "roi_align.h"

namespace minidl {

template <typename T>
static void cell_taps(const RoiAlignGeometry<T>& g, index_t ph, index_t pw, index_t height,
                      index_t width, std::vector<BilinearTap<T>>& taps) {
  taps.clear();
  for (index_t iy = 0; iy < g.grid_h; ++iy)
    for (index_t ix = 0; ix < g.grid_w; ++ix)
      taps.push_back(roi_align_tap(g, ph, pw, iy, ix, height, width));
}

template <typename T>
void roi_align_forward_cpu(const T* input, index_t batch, index_t channels, index_t height,
                           index_t width, const T* rois, index_t num_rois, double spatial_scale,
                           index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                           bool aligned, T* output) {
  const T scale = static_cast<T>(spatial_scale);
  const index_t plane = height * width, cells = pooled_h * pooled_w;
#pragma omp parallel if (num_rois * channels * cells > 16384)
  {
    std::vector<BilinearTap<T>> taps;  // one table per thread
#pragma omp for schedule(dynamic, 2)
    for (index_t k = 0; k < num_rois; ++k) {
      const RoiAlignGeometry<T> g =
          roi_align_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w, sampling_ratio, aligned);
      const T* image = input + (g.valid ? g.batch : 0) * channels * plane;
      for (index_t p = 0; p < cells; ++p) {
        cell_taps(g, p / pooled_w, p % pooled_w, height, width, taps);
        for (index_t c = 0; c < channels; ++c) {
          const T* x = image + c * plane;
          T sum = T(0);
          for (const BilinearTap<T>& t : taps) sum += tap_value(x, t);
          output[(k * channels + c) * cells + p] = g.valid ? sum / g.count : T(0);
        }
      }
    }
  }
}

template <typename T>
void roi_align_backward_cpu(const T* grad_output, const T* rois, index_t num_rois, index_t batch,
                            index_t channels, index_t height, index_t width, double spatial_scale,
                            index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                            bool aligned, T* grad_input) {
  const T scale = static_cast<T>(spatial_scale);
  const index_t plane = height * width, cells = pooled_h * pooled_w;
  const PlainAdd add;
  // Every thread walks all RoIs in order but only touches its own channels [c0, c1): no two
  // threads write the same address, and each sum is formed in the same order every run.
  // (The taps of a cell are computed by every thread — cheap next to the channel loop.)
#pragma omp parallel if (num_rois * channels * cells > 16384)
  {
    index_t c0 = 0, c1 = channels;
#ifdef _OPENMP
    const index_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    c0 = channels * id / threads, c1 = channels * (id + 1) / threads;
#endif
    std::vector<BilinearTap<T>> taps;
    for (index_t k = 0; k < num_rois && c0 < c1; ++k) {
      const RoiAlignGeometry<T> g =
          roi_align_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w, sampling_ratio, aligned);
      if (!g.valid) continue;
      for (index_t p = 0; p < cells; ++p) {
        cell_taps(g, p / pooled_w, p % pooled_w, height, width, taps);
        for (index_t c = c0; c < c1; ++c) {
          T* grad_plane = grad_input + (g.batch * channels + c) * plane;
          const T share = grad_output[(k * channels + c) * cells + p] / g.count;
          for (const BilinearTap<T>& t : taps) tap_backward(grad_plane, t, share, add);
        }
      }
    }
  }
}

template void roi_align_forward_cpu<float>(const float*, index_t, index_t, index_t, index_t,
                                           const float*, index_t, double, index_t, index_t,
                                           index_t, bool, float*);
template void roi_align_forward_cpu<double>(const double*, index_t, index_t, index_t, index_t,
                                            const double*, index_t, double, index_t, index_t,
                                            index_t, bool, double*);
template void roi_align_backward_cpu<float>(const float*, const float*, index_t, index_t, index_t,
                                            index_t, index_t, double, index_t, index_t, index_t,
                                            bool, float*);
template void roi_align_backward_cpu<double>(const double*, const double*, index_t, index_t,
                                             index_t, index_t, index_t, double, index_t, index_t,
                                             index_t, bool, double*);
}  // namespace minidl
