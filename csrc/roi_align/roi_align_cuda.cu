// roi_align_cuda.cu — one CUDA thread per output cell (forward, fast backward) or per
// (image, channel) plane (deterministic backward), each calling the shared body (roi_align.h).
#include "../common/cuda_check.h"
#include "roi_align.h"
#include "roi_align_cuda.h"

namespace minidl {

// The sizes every kernel needs, in one argument.
struct AlignShape {
  index_t num_rois, batch, channels, height, width, pooled_h, pooled_w, sampling_ratio;
  bool aligned;
};

template <typename T>
__global__ void roi_align_forward_kernel(const T* input, const T* rois, T scale, AlignShape s,
                                         T* output) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= s.num_rois * s.channels * s.pooled_h * s.pooled_w) return;
  const index_t pw = index % s.pooled_w, ph = index / s.pooled_w % s.pooled_h;
  const index_t c = index / (s.pooled_w * s.pooled_h) % s.channels;
  const index_t k = index / (s.pooled_w * s.pooled_h * s.channels);
  const RoiAlignGeometry<T> g = roi_align_geometry(rois + 5 * k, scale, s.batch, s.pooled_h,
                                                   s.pooled_w, s.sampling_ratio, s.aligned);
  const T* plane = input + ((g.valid ? g.batch : 0) * s.channels + c) * s.height * s.width;
  output[index] = roi_align_cell(plane, g, ph, pw, s.height, s.width);
}

template <typename T>
__global__ void roi_align_backward_atomic_kernel(const T* grad_output, const T* rois, T scale,
                                                 AlignShape s, T* grad_input) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= s.num_rois * s.channels * s.pooled_h * s.pooled_w) return;
  const index_t pw = index % s.pooled_w, ph = index / s.pooled_w % s.pooled_h;
  const index_t c = index / (s.pooled_w * s.pooled_h) % s.channels;
  const index_t k = index / (s.pooled_w * s.pooled_h * s.channels);
  const RoiAlignGeometry<T> g = roi_align_geometry(rois + 5 * k, scale, s.batch, s.pooled_h,
                                                   s.pooled_w, s.sampling_ratio, s.aligned);
  if (!g.valid) return;
  T* plane = grad_input + (g.batch * s.channels + c) * s.height * s.width;
  roi_align_cell_backward(plane, g, ph, pw, s.height, s.width, grad_output[index], AtomicAdd());
}

template <typename T>
__global__ void roi_align_backward_plane_kernel(const T* grad_output, const T* rois, T scale,
                                                AlignShape s, T* grad_input) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= s.batch * s.channels) return;
  const index_t b = index / s.channels, c = index % s.channels;
  const index_t cells = s.pooled_h * s.pooled_w;
  T* plane = grad_input + index * s.height * s.width;
  for (index_t k = 0; k < s.num_rois; ++k) {
    const RoiAlignGeometry<T> g = roi_align_geometry(rois + 5 * k, scale, s.batch, s.pooled_h,
                                                     s.pooled_w, s.sampling_ratio, s.aligned);
    if (!g.valid || g.batch != b) continue;
    for (index_t p = 0; p < cells; ++p)
      roi_align_cell_backward(plane, g, p / s.pooled_w, p % s.pooled_w, s.height, s.width,
                              grad_output[(k * s.channels + c) * cells + p], PlainAdd());
  }
}

void roi_align_forward_cuda(std::uintptr_t input, std::int64_t batch, std::int64_t channels,
                            std::int64_t height, std::int64_t width, std::uintptr_t rois,
                            std::int64_t num_rois, double spatial_scale, std::int64_t pooled_h,
                            std::int64_t pooled_w, std::int64_t sampling_ratio, bool aligned,
                            std::uintptr_t output, int dtype_code, std::uintptr_t stream) {
  const AlignShape s{num_rois, batch, channels, height, width, pooled_h, pooled_w, sampling_ratio,
                     aligned};
  const index_t total = num_rois * channels * pooled_h * pooled_w;
  if (total == 0) return;
  auto st = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    roi_align_forward_kernel<float><<<blocks_for(total), kThreads, 0, st>>>(
        reinterpret_cast<const float*>(input), reinterpret_cast<const float*>(rois),
        static_cast<float>(spatial_scale), s, reinterpret_cast<float*>(output));
  else
    roi_align_forward_kernel<double><<<blocks_for(total), kThreads, 0, st>>>(
        reinterpret_cast<const double*>(input), reinterpret_cast<const double*>(rois),
        spatial_scale, s, reinterpret_cast<double*>(output));
  cuda_check(cudaGetLastError(), "roi_align_forward");
}

template <typename T>
static void backward(std::uintptr_t grad_output, std::uintptr_t rois, T scale, const AlignShape& s,
                     std::uintptr_t grad_input, bool deterministic, cudaStream_t st) {
  auto go = reinterpret_cast<const T*>(grad_output);
  auto r = reinterpret_cast<const T*>(rois);
  auto gi = reinterpret_cast<T*>(grad_input);
  if (deterministic)
    roi_align_backward_plane_kernel<T><<<blocks_for(s.batch * s.channels), kThreads, 0, st>>>(
        go, r, scale, s, gi);
  else
    roi_align_backward_atomic_kernel<T>
        <<<blocks_for(s.num_rois * s.channels * s.pooled_h * s.pooled_w), kThreads, 0, st>>>(
            go, r, scale, s, gi);
}

void roi_align_backward_cuda(std::uintptr_t grad_output, std::uintptr_t rois, std::int64_t num_rois,
                             std::int64_t batch, std::int64_t channels, std::int64_t height,
                             std::int64_t width, double spatial_scale, std::int64_t pooled_h,
                             std::int64_t pooled_w, std::int64_t sampling_ratio, bool aligned,
                             std::uintptr_t grad_input, bool deterministic, int dtype_code,
                             std::uintptr_t stream) {
  const AlignShape s{num_rois, batch, channels, height, width, pooled_h, pooled_w, sampling_ratio,
                     aligned};
  if (num_rois * channels * pooled_h * pooled_w == 0 || batch * height * width == 0) return;
  auto st = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    backward<float>(grad_output, rois, static_cast<float>(spatial_scale), s, grad_input,
                    deterministic, st);
  else
    backward<double>(grad_output, rois, spatial_scale, s, grad_input, deterministic, st);
  cuda_check(cudaGetLastError(), "roi_align_backward");
}

}  // namespace minidl
