// im2col_cuda.h — the CUDA launchers' plain C++ API: device pointers and the stream as
// integers, sizes as ints. nvcc compiles the .cu; the pybind11 binding includes only this.
// Shapes are checked on the Python side (minidl/kernels/im2col.py) before these are called.
#pragma once
#include <cstdint>

namespace minidl {
// x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w). dtype_code: 0 = float32, 1 = float64.
void im2col_cuda(std::uintptr_t x, std::uintptr_t cols, std::int64_t batch, std::int64_t channels,
                 std::int64_t height, std::int64_t width, std::int64_t kernel_h,
                 std::int64_t kernel_w, std::int64_t stride_h, std::int64_t stride_w,
                 std::int64_t pad_h, std::int64_t pad_w, std::int64_t dilation_h,
                 std::int64_t dilation_w, int dtype_code, std::uintptr_t stream);

// cols (C*kh*kw, N*out_h*out_w) -> x (N, C, H, W) (every pixel written; gather, no atomics).
void col2im_cuda(std::uintptr_t cols, std::uintptr_t x, std::int64_t batch, std::int64_t channels,
                 std::int64_t height, std::int64_t width, std::int64_t kernel_h,
                 std::int64_t kernel_w, std::int64_t stride_h, std::int64_t stride_w,
                 std::int64_t pad_h, std::int64_t pad_w, std::int64_t dilation_h,
                 std::int64_t dilation_w, int dtype_code, std::uintptr_t stream);
}  // namespace minidl
