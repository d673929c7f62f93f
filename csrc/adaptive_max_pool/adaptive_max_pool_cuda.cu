// adaptive_max_pool_cuda.cu — one CUDA thread per output cell (forward) and per input plane
// (backward), each calling the shared body (adaptive_max_pool.h).
//
// Why the backward pass loops over planes instead of using atomicAdd per cell: the pyramid
// levels of SPP-net are tiny (1×1 … 6×6 cells per plane) and the planes many (N·C: thousands),
// so a thread per plane already fills the GPU, each does at most a few dozen additions, and
// the result is deterministic and bit-identical to the CPU — with atomics the order of the
// additions where bins overlap, hence the last bits, would change from run to run. (Large
// outputs, e.g. out = H, give each thread more serial work; roi_pool keeps an atomic path for
// that case, this op has not needed one.)
#include "../common/cuda_check.h"
#include "adaptive_max_pool.h"
#include "adaptive_max_pool_cuda.h"

namespace minidl {

template <typename T>
__global__ void adaptive_max_pool2d_forward_kernel(const T* input, index_t planes, index_t height,
                                                   index_t width, index_t out_h, index_t out_w,
                                                   T* output, index_t* argmax) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t cells = out_h * out_w;
  if (index >= planes * cells) return;
  const index_t p = index % cells, nc = index / cells;
  adaptive_max_pool_cell(input + nc * height * width, height, width, out_h, out_w, p / out_w,
                         p % out_w, output + index, argmax + index);
}

template <typename T>
__global__ void adaptive_max_pool2d_backward_kernel(const T* grad_output, const index_t* argmax,
                                                    index_t planes, index_t plane, index_t cells,
                                                    T* grad_input) {
  const index_t nc = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (nc >= planes) return;
  adaptive_max_pool_plane_backward(grad_output + nc * cells, argmax + nc * cells, cells, plane,
                                   grad_input + nc * plane);
}

template <typename T>
static void forward(std::uintptr_t input, index_t planes, index_t height, index_t width,
                    index_t out_h, index_t out_w, std::uintptr_t output, std::uintptr_t argmax,
                    cudaStream_t s) {
  adaptive_max_pool2d_forward_kernel<T><<<blocks_for(planes * out_h * out_w), kThreads, 0, s>>>(
      reinterpret_cast<const T*>(input), planes, height, width, out_h, out_w,
      reinterpret_cast<T*>(output), reinterpret_cast<index_t*>(argmax));
}

template <typename T>
static void backward(std::uintptr_t grad_output, std::uintptr_t argmax, index_t planes,
                     index_t plane, index_t cells, std::uintptr_t grad_input, cudaStream_t s) {
  adaptive_max_pool2d_backward_kernel<T><<<blocks_for(planes), kThreads, 0, s>>>(
      reinterpret_cast<const T*>(grad_output), reinterpret_cast<const index_t*>(argmax), planes,
      plane, cells, reinterpret_cast<T*>(grad_input));
}

void adaptive_max_pool2d_forward_cuda(std::uintptr_t input, std::int64_t batch,
                                      std::int64_t channels, std::int64_t height,
                                      std::int64_t width, std::int64_t out_h, std::int64_t out_w,
                                      std::uintptr_t output, std::uintptr_t argmax, int dtype_code,
                                      std::uintptr_t stream) {
  const index_t planes = batch * channels;
  if (planes * out_h * out_w == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    forward<float>(input, planes, height, width, out_h, out_w, output, argmax, s);
  else
    forward<double>(input, planes, height, width, out_h, out_w, output, argmax, s);
  cuda_check(cudaGetLastError(), "adaptive_max_pool2d_forward");
}

void adaptive_max_pool2d_backward_cuda(std::uintptr_t grad_output, std::uintptr_t argmax,
                                       std::int64_t batch, std::int64_t channels,
                                       std::int64_t height, std::int64_t width,
                                       std::int64_t out_h, std::int64_t out_w,
                                       std::uintptr_t grad_input, int dtype_code,
                                       std::uintptr_t stream) {
  const index_t planes = batch * channels, plane = height * width, cells = out_h * out_w;
  if (planes * cells == 0 || plane == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    backward<float>(grad_output, argmax, planes, plane, cells, grad_input, s);
  else
    backward<double>(grad_output, argmax, planes, plane, cells, grad_input, s);
  cuda_check(cudaGetLastError(), "adaptive_max_pool2d_backward");
}

}  // namespace minidl
