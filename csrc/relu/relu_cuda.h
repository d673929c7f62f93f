// relu_cuda.h — the CUDA launchers' plain C++ API (device pointers and the stream as integers).
// See relu.h for what they compute.
#pragma once
#include <cstdint>

namespace minidl {
// dtype_code: 0 = float32, 1 = float64. Throw std::runtime_error on a CUDA error.
void relu_forward_cuda(std::uintptr_t x, std::uintptr_t out, std::int64_t count, int dtype_code,
                       std::uintptr_t stream);
void relu_backward_cuda(std::uintptr_t grad_output, std::uintptr_t output,
                        std::uintptr_t grad_input, std::int64_t count, int dtype_code,
                        std::uintptr_t stream);
}  // namespace minidl
