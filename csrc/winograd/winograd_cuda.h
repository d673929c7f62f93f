// winograd_cuda.h — the CUDA launchers' plain C++ API: device pointers and the stream as
// integers. nvcc compiles the .cu; the pybind11 binding includes only this header.
#pragma once
#include <cstdint>

namespace minidl {
// x (N, C, H, W) -> V (B, C, P), B = (tile + 2)² blocks for tiles of m = tile (2 or 4) outputs.
// dtype_code: 0 = float32, 1 = float64.
void winograd_input_transform_cuda(std::uintptr_t x, std::uintptr_t V, std::int64_t batch,
                                   std::int64_t channels, std::int64_t height, std::int64_t width,
                                   std::int64_t pad_h, std::int64_t pad_w, std::int64_t tile,
                                   int dtype_code, std::uintptr_t stream);
// M (B, F, P) -> y (N, F, out_h, out_w), + bias[f] (bias 0: none).
void winograd_output_transform_cuda(std::uintptr_t M, std::uintptr_t bias, std::uintptr_t y,
                                    std::int64_t batch, std::int64_t filters, std::int64_t out_h,
                                    std::int64_t out_w, std::int64_t tile, int dtype_code,
                                    std::uintptr_t stream);
// The backward's adjoints: dy (N, F, out_h, out_w) -> dM (B, F, P); dV (B, C, P) -> dx (N, C, H, W).
void winograd_output_adjoint_cuda(std::uintptr_t dy, std::uintptr_t dM, std::int64_t batch,
                                  std::int64_t filters, std::int64_t out_h, std::int64_t out_w,
                                  std::int64_t tile, int dtype_code, std::uintptr_t stream);
void winograd_input_adjoint_cuda(std::uintptr_t dV, std::uintptr_t dx, std::int64_t batch,
                                 std::int64_t channels, std::int64_t height, std::int64_t width,
                                 std::int64_t pad_h, std::int64_t pad_w, std::int64_t tile,
                                 int dtype_code, std::uintptr_t stream);
}  // namespace minidl
