// roi_pool_cuda.cu — one CUDA thread per output cell (forward, fast backward) or per
// (image, channel) plane (deterministic backward), each calling the shared body (roi_pool.h).
#include "../common/cuda_check.h"
#include "roi_pool.h"
#include "roi_pool_cuda.h"

namespace minidl {

template <typename T>
__global__ void roi_pool_forward_kernel(const T* input, index_t batch, index_t channels,
                                        index_t height, index_t width, const T* rois,
                                        index_t num_rois, T scale, index_t pooled_h,
                                        index_t pooled_w, T* output, index_t* argmax) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= num_rois * channels * pooled_h * pooled_w) return;
  const index_t pw = index % pooled_w, ph = index / pooled_w % pooled_h;
  const index_t c = index / (pooled_w * pooled_h) % channels;
  const index_t k = index / (pooled_w * pooled_h * channels);
  const RoiPoolGeometry<T> g = roi_pool_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w);
  const PoolWindow win = roi_pool_window(g, ph, pw, height, width);
  const T* plane = input + ((g.valid ? g.batch : 0) * channels + c) * height * width;
  roi_pool_cell(plane, width, win, output + index, argmax + index);
}

template <typename T>
__global__ void roi_pool_backward_atomic_kernel(const T* grad_output, const index_t* argmax,
                                                const T* rois, index_t num_rois, index_t batch,
                                                index_t channels, index_t plane, index_t cells,
                                                T* grad_input) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= num_rois * channels * cells) return;
  const index_t c = index / cells % channels, k = index / (cells * channels);
  const index_t b = roi_batch_index(rois + 5 * k, batch);
  if (b < 0) return;
  roi_pool_cell_backward(grad_input + (b * channels + c) * plane, plane, argmax[index],
                         grad_output[index], AtomicAdd());
}

template <typename T>
__global__ void roi_pool_backward_plane_kernel(const T* grad_output, const index_t* argmax,
                                               const T* rois, index_t num_rois, index_t batch,
                                               index_t channels, index_t plane, index_t cells,
                                               T* grad_input) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= batch * channels) return;
  const index_t b = index / channels, c = index % channels;
  for (index_t k = 0; k < num_rois; ++k) {
    if (roi_batch_index(rois + 5 * k, batch) != b) continue;
    const index_t first = (k * channels + c) * cells;
    for (index_t p = 0; p < cells; ++p)
      roi_pool_cell_backward(grad_input + index * plane, plane, argmax[first + p],
                             grad_output[first + p], PlainAdd());
  }
}

template <typename T>
static void forward(std::uintptr_t input, index_t batch, index_t channels, index_t height,
                    index_t width, std::uintptr_t rois, index_t num_rois, double spatial_scale,
                    index_t pooled_h, index_t pooled_w, std::uintptr_t output,
                    std::uintptr_t argmax, cudaStream_t s) {
  const index_t total = num_rois * channels * pooled_h * pooled_w;
  roi_pool_forward_kernel<T><<<blocks_for(total), kThreads, 0, s>>>(
      reinterpret_cast<const T*>(input), batch, channels, height, width,
      reinterpret_cast<const T*>(rois), num_rois, static_cast<T>(spatial_scale), pooled_h,
      pooled_w, reinterpret_cast<T*>(output), reinterpret_cast<index_t*>(argmax));
}

template <typename T>
static void backward(std::uintptr_t grad_output, std::uintptr_t argmax, std::uintptr_t rois,
                     index_t num_rois, index_t batch, index_t channels, index_t height,
                     index_t width, index_t pooled_h, index_t pooled_w, std::uintptr_t grad_input,
                     bool deterministic, cudaStream_t s) {
  auto go = reinterpret_cast<const T*>(grad_output);
  auto am = reinterpret_cast<const index_t*>(argmax);
  auto r = reinterpret_cast<const T*>(rois);
  auto gi = reinterpret_cast<T*>(grad_input);
  const index_t plane = height * width, cells = pooled_h * pooled_w;
  if (deterministic)
    roi_pool_backward_plane_kernel<T><<<blocks_for(batch * channels), kThreads, 0, s>>>(
        go, am, r, num_rois, batch, channels, plane, cells, gi);
  else
    roi_pool_backward_atomic_kernel<T><<<blocks_for(num_rois * channels * cells), kThreads, 0, s>>>(
        go, am, r, num_rois, batch, channels, plane, cells, gi);
}

void roi_pool_forward_cuda(std::uintptr_t input, std::int64_t batch, std::int64_t channels,
                           std::int64_t height, std::int64_t width, std::uintptr_t rois,
                           std::int64_t num_rois, double spatial_scale, std::int64_t pooled_h,
                           std::int64_t pooled_w, std::uintptr_t output, std::uintptr_t argmax,
                           int dtype_code, std::uintptr_t stream) {
  if (num_rois * channels * pooled_h * pooled_w == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    forward<float>(input, batch, channels, height, width, rois, num_rois, spatial_scale, pooled_h,
                   pooled_w, output, argmax, s);
  else
    forward<double>(input, batch, channels, height, width, rois, num_rois, spatial_scale, pooled_h,
                    pooled_w, output, argmax, s);
  cuda_check(cudaGetLastError(), "roi_pool_forward");
}

void roi_pool_backward_cuda(std::uintptr_t grad_output, std::uintptr_t argmax, std::uintptr_t rois,
                            std::int64_t num_rois, std::int64_t batch, std::int64_t channels,
                            std::int64_t height, std::int64_t width, std::int64_t pooled_h,
                            std::int64_t pooled_w, std::uintptr_t grad_input, bool deterministic,
                            int dtype_code, std::uintptr_t stream) {
  if (num_rois * channels * pooled_h * pooled_w == 0 || batch * height * width == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    backward<float>(grad_output, argmax, rois, num_rois, batch, channels, height, width, pooled_h,
                    pooled_w, grad_input, deterministic, s);
  else
    backward<double>(grad_output, argmax, rois, num_rois, batch, channels, height, width, pooled_h,
                     pooled_w, grad_input, deterministic, s);
  cuda_check(cudaGetLastError(), "roi_pool_backward");
}

}  // namespace minidl
