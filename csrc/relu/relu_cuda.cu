// relu_cuda.cu — one CUDA thread per value, calling the shared bodies (relu.h).
#include "../common/cuda_check.h"
#include "relu.h"
#include "relu_cuda.h"

namespace minidl {

template <typename T>
__global__ void relu_forward_kernel(const T* x, index_t count, T* out) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] = relu_forward_element(x[i]);
}

template <typename T>
__global__ void relu_backward_kernel(const T* grad_output, const T* output, index_t count,
                                     T* grad_input) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) grad_input[i] = relu_backward_element(grad_output[i], output[i]);
}

template <typename T>
static void forward(std::uintptr_t x, std::uintptr_t out, index_t count, cudaStream_t s) {
  relu_forward_kernel<T><<<blocks_for(count), kThreads, 0, s>>>(
      reinterpret_cast<const T*>(x), count, reinterpret_cast<T*>(out));
}

template <typename T>
static void backward(std::uintptr_t grad_output, std::uintptr_t output, std::uintptr_t grad_input,
                     index_t count, cudaStream_t s) {
  relu_backward_kernel<T><<<blocks_for(count), kThreads, 0, s>>>(
      reinterpret_cast<const T*>(grad_output), reinterpret_cast<const T*>(output), count,
      reinterpret_cast<T*>(grad_input));
}

void relu_forward_cuda(std::uintptr_t x, std::uintptr_t out, std::int64_t count, int dtype_code,
                       std::uintptr_t stream) {
  if (count == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    forward<float>(x, out, count, s);
  else
    forward<double>(x, out, count, s);
  cuda_check(cudaGetLastError(), "relu_forward");
}

void relu_backward_cuda(std::uintptr_t grad_output, std::uintptr_t output,
                        std::uintptr_t grad_input, std::int64_t count, int dtype_code,
                        std::uintptr_t stream) {
  if (count == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    backward<float>(grad_output, output, grad_input, count, s);
  else
    backward<double>(grad_output, output, grad_input, count, s);
  cuda_check(cudaGetLastError(), "relu_backward");
}

}  // namespace minidl
