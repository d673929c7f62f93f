// roi_align_cpu.cpp — RoIAlign on the CPU: an OpenMP loop calling the shared body (roi_align.h).
//
// The very code the CUDA kernels run (roi_align_cuda.cu), one loop iteration where the GPU has
// one thread: the forward computes one output cell per iteration (roi_align_cell), the backward
// owns one (image, channel) plane per iteration and adds the cells of every RoI on it in order
// (roi_align_cell_backward) — no two iterations write the same address, so it is deterministic.
// The fast form of the same numbers is roi_align_cpu_fast.cpp (minidl._C's default).
#include "roi_align_cpu.h"

#include "../common/roi_common.h"
#include "roi_align.h"

namespace minidl {

template <typename T>
void roi_align_forward_cpu(const T* input, index_t batch, index_t channels, index_t height,
                           index_t width, const T* rois, index_t num_rois, double spatial_scale,
                           index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                           bool aligned, T* output) {
  const T scale = static_cast<T>(spatial_scale);
  const index_t cells = pooled_h * pooled_w, total = num_rois * channels * cells;
#pragma omp parallel for schedule(static) if (total > 16384)
  for (index_t index = 0; index < total; ++index) {           // (k, c, ph, pw), row-major
    const index_t pw = index % pooled_w, ph = index / pooled_w % pooled_h;
    const index_t c = index / cells % channels, k = index / (cells * channels);
    const RoiAlignGeometry<T> g = roi_align_geometry(rois + 5 * k, scale, batch, pooled_h,
                                                     pooled_w, sampling_ratio, aligned);
    const T* plane = input + ((g.valid ? g.batch : 0) * channels + c) * height * width;
    output[index] = roi_align_cell(plane, g, ph, pw, height, width);
  }
}

template <typename T>
void roi_align_backward_cpu(const T* grad_output, const T* rois, index_t num_rois, index_t batch,
                            index_t channels, index_t height, index_t width, double spatial_scale,
                            index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                            bool aligned, T* grad_input) {
  const T scale = static_cast<T>(spatial_scale);
  const index_t cells = pooled_h * pooled_w, planes = batch * channels;
#pragma omp parallel for schedule(dynamic, 1) if (num_rois * channels * cells > 16384)
  for (index_t index = 0; index < planes; ++index) {          // one (image b, channel c) plane
    const index_t b = index / channels, c = index % channels;
    T* plane = grad_input + index * height * width;
    for (index_t k = 0; k < num_rois; ++k) {
      const RoiAlignGeometry<T> g = roi_align_geometry(rois + 5 * k, scale, batch, pooled_h,
                                                       pooled_w, sampling_ratio, aligned);
      if (!g.valid || g.batch != b) continue;
      for (index_t p = 0; p < cells; ++p)
        roi_align_cell_backward(plane, g, p / pooled_w, p % pooled_w, height, width,
                                grad_output[(k * channels + c) * cells + p], PlainAdd());
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
