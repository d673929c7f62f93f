// norm_cuda.h — the CUDA launchers' plain C++ API (device pointers and the stream as integers;
// a null weight / bias pointer means gamma = 1 / beta = 0, a null relu_out no fused ReLU).
// See norm.h for what they compute.
#pragma once
#include <cstdint>

namespace minidl {
// dtype_code: 0 = float32, 1 = float64. Throw std::runtime_error on a CUDA error.
void norm_statistics_cuda(std::uintptr_t x, std::int64_t batch, std::int64_t channels,
                          std::int64_t plane, bool per_instance, std::uintptr_t mean,
                          std::uintptr_t var, int dtype_code, std::uintptr_t stream);
void norm_forward_cuda(std::uintptr_t x, std::int64_t batch, std::int64_t channels,
                       std::int64_t plane, bool per_instance, std::uintptr_t mean,
                       std::uintptr_t var, std::uintptr_t weight, std::uintptr_t bias, double eps,
                       bool relu, std::uintptr_t out, int dtype_code, std::uintptr_t stream);
void norm_backward_sums_cuda(std::uintptr_t dy, std::uintptr_t relu_out, std::uintptr_t x,
                             std::int64_t batch,
                             std::int64_t channels, std::int64_t plane, bool per_instance,
                             std::uintptr_t mean, std::uintptr_t var, double eps,
                             std::uintptr_t sum_dy, std::uintptr_t sum_dy_xhat, int dtype_code,
                             std::uintptr_t stream);
void norm_backward_input_cuda(std::uintptr_t dy, std::uintptr_t relu_out, std::uintptr_t x,
                              std::int64_t batch,
                              std::int64_t channels, std::int64_t plane, bool per_instance,
                              std::uintptr_t mean, std::uintptr_t var, std::uintptr_t weight,
                              double eps, std::uintptr_t sum_dy, std::uintptr_t sum_dy_xhat,
                              bool input_stats, std::uintptr_t dx, int dtype_code,
                              std::uintptr_t stream);
}  // namespace minidl
