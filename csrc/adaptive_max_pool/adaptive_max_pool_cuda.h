// adaptive_max_pool_cuda.h — the CUDA launchers' plain C++ API: device pointers and the stream
// as integers (nvcc compiles the .cu; the pybind11 binding includes only this header). Shapes
// as in adaptive_max_pool_cpu.h; argmax is int64. dtype_code: 0 = float32, 1 = float64.
#pragma once
#include <cstdint>

namespace minidl {
// One thread per output cell.
void adaptive_max_pool2d_forward_cuda(std::uintptr_t input, std::int64_t batch,
                                      std::int64_t channels, std::int64_t height,
                                      std::int64_t width, std::int64_t out_h, std::int64_t out_w,
                                      std::uintptr_t output, std::uintptr_t argmax, int dtype_code,
                                      std::uintptr_t stream);

// grad_input must be zero on entry. One thread per (image, channel) plane adding its cells in
// order: no atomics, deterministic and bit-identical to the CPU (see the .cu for why).
void adaptive_max_pool2d_backward_cuda(std::uintptr_t grad_output, std::uintptr_t argmax,
                                       std::int64_t batch, std::int64_t channels,
                                       std::int64_t height, std::int64_t width,
                                       std::int64_t out_h, std::int64_t out_w,
                                       std::uintptr_t grad_input, int dtype_code,
                                       std::uintptr_t stream);
}  // namespace minidl
