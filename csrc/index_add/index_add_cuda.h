// index_add_cuda.h — the CUDA launcher's plain C++ API: device pointers as integers, the
// stream as an integer. nvcc compiles the .cu; the pybind11 binding includes only this header.
#pragma once
#include <cstdint>

namespace minidl {
// dtype_code: 0 = float32, 1 = float64. Throws std::runtime_error on a CUDA error.
void index_add_cuda(std::uintptr_t index, std::int64_t n, std::uintptr_t src, std::uintptr_t out,
                    std::int64_t rows, std::int64_t inner, int dtype_code, std::uintptr_t stream);
}  // namespace minidl
