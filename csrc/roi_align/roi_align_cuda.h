// roi_align_cuda.h — the CUDA launchers' plain C++ API: device pointers and the stream as
// integers (nvcc compiles the .cu; the pybind11 binding includes only this header). Shapes as
// in roi_align_cpu.h. dtype_code: 0 = float32, 1 = float64.
#pragma once
#include <cstdint>

namespace minidl {
void roi_align_forward_cuda(std::uintptr_t input, std::int64_t batch, std::int64_t channels,
                            std::int64_t height, std::int64_t width, std::uintptr_t rois,
                            std::int64_t num_rois, double spatial_scale, std::int64_t pooled_h,
                            std::int64_t pooled_w, std::int64_t sampling_ratio, bool aligned,
                            std::uintptr_t output, int dtype_code, std::uintptr_t stream);

// grad_input must be zero on entry. deterministic = false: one thread per output cell adding
// with atomicAdd (fast; the order of the additions, hence the last bits, varies from run to
// run). deterministic = true: one thread per (image, channel) plane adding in RoI order, the
// CPU's order (reproducible; slower: the parallelism is batch × channels threads).
void roi_align_backward_cuda(std::uintptr_t grad_output, std::uintptr_t rois, std::int64_t num_rois,
                             std::int64_t batch, std::int64_t channels, std::int64_t height,
                             std::int64_t width, double spatial_scale, std::int64_t pooled_h,
                             std::int64_t pooled_w, std::int64_t sampling_ratio, bool aligned,
                             std::uintptr_t grad_input, bool deterministic, int dtype_code,
                             std::uintptr_t stream);
}  // namespace minidl
