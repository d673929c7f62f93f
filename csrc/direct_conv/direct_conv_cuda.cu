// direct_conv_cuda.cu — the direct K×K convolution on the GPU: one thread per output value (or
// per filter tap of the weight gradient), each calling the shared body of direct_conv.h.
// Correct, not tuned: minidl/functional/conv_direct.py takes this lane on the CPU only, so these
// kernels are the bodies' GPU check (tests/test_direct_conv.py), not the GPU's convolution.
#include "../common/cuda_check.h"
#include "direct_conv.h"
#include "direct_conv_cuda.h"

namespace minidl {

template <typename T>
__global__ void direct_conv_kernel(const T* x, const T* w, const T* bias, DirectConvGeometry g,
                                      T* y) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.batch * g.filters * g.out_h * g.out_w) return;
  const index_t ox = i % g.out_w, oy = i / g.out_w % g.out_h;
  const index_t f = i / (g.out_w * g.out_h) % g.filters, n = i / (g.out_w * g.out_h * g.filters);
  y[i] = direct_conv_value(x, w, bias, g, n, f, oy, ox);
}

template <typename T>
__global__ void direct_conv_weight_grad_kernel(const T* x, const T* dy, DirectConvGeometry g,
                                                  T* dW) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t k = g.kernel, taps = k * k;
  if (i >= g.filters * g.channels * taps) return;
  const index_t kx = i % k, ky = i / k % k, c = i / taps % g.channels, f = i / (taps * g.channels);
  dW[i] = direct_conv_weight_grad_value(x, dy, g, f, c, ky, kx);
}

void direct_conv_cuda(std::uintptr_t x, std::uintptr_t w, std::uintptr_t bias, std::uintptr_t y,
                      std::int64_t batch, std::int64_t channels, std::int64_t height,
                      std::int64_t width, std::int64_t filters, std::int64_t kernel,
                      std::int64_t pad_h, std::int64_t pad_w, std::int64_t stride, int dtype_code,
                      std::uintptr_t stream) {
  const auto g =
      make_direct_conv_geometry(batch, channels, height, width, filters, kernel, pad_h, pad_w, stride);
  const index_t total = g.batch * g.filters * g.out_h * g.out_w;
  if (total == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    direct_conv_kernel<float><<<blocks_for(total), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(x), reinterpret_cast<const float*>(w),
        reinterpret_cast<const float*>(bias), g, reinterpret_cast<float*>(y));
  else
    direct_conv_kernel<double><<<blocks_for(total), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(x), reinterpret_cast<const double*>(w),
        reinterpret_cast<const double*>(bias), g, reinterpret_cast<double*>(y));
  cuda_check(cudaGetLastError(), "direct_conv");
}

void direct_conv_weight_grad_cuda(std::uintptr_t x, std::uintptr_t dy, std::uintptr_t dW,
                                  std::int64_t batch, std::int64_t channels, std::int64_t height,
                                  std::int64_t width, std::int64_t filters, std::int64_t kernel,
                                  std::int64_t pad_h, std::int64_t pad_w, std::int64_t stride,
                                  int dtype_code, std::uintptr_t stream) {
  const auto g =
      make_direct_conv_geometry(batch, channels, height, width, filters, kernel, pad_h, pad_w, stride);
  const index_t total = g.filters * g.channels * g.kernel * g.kernel;
  if (total == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    direct_conv_weight_grad_kernel<float><<<blocks_for(total), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(x), reinterpret_cast<const float*>(dy), g,
        reinterpret_cast<float*>(dW));
  else
    direct_conv_weight_grad_kernel<double><<<blocks_for(total), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(x), reinterpret_cast<const double*>(dy), g,
        reinterpret_cast<double*>(dW));
  cuda_check(cudaGetLastError(), "direct_conv_weight_grad");
}

}  // namespace minidl
