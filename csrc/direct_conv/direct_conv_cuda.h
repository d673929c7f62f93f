// direct_conv_cuda.h — the CUDA launchers' plain C++ API: device pointers and the stream as
// integers. nvcc compiles the .cu; the pybind11 binding includes only this header.
#pragma once
#include <cstdint>

namespace minidl {
// x (N, C, H, W), w (F, C, K, K), bias (F) or 0 -> y (N, F, out_h, out_w).
// dtype_code: 0 = float32, 1 = float64. Throws std::runtime_error on a CUDA error.
void direct_conv_cuda(std::uintptr_t x, std::uintptr_t w, std::uintptr_t bias, std::uintptr_t y,
                      std::int64_t batch, std::int64_t channels, std::int64_t height,
                      std::int64_t width, std::int64_t filters, std::int64_t kernel,
                      std::int64_t pad_h, std::int64_t pad_w, std::int64_t stride, int dtype_code,
                      std::uintptr_t stream);
// x (N, C, H, W), dy (N, F, out_h, out_w) -> dW (F, C, K, K).
void direct_conv_weight_grad_cuda(std::uintptr_t x, std::uintptr_t dy, std::uintptr_t dW,
                                  std::int64_t batch, std::int64_t channels, std::int64_t height,
                                  std::int64_t width, std::int64_t filters, std::int64_t kernel,
                                  std::int64_t pad_h, std::int64_t pad_w, std::int64_t stride,
                                  int dtype_code, std::uintptr_t stream);
}  // namespace minidl
