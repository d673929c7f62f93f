// roi_pool_cpu.h — the CPU launchers' declarations (see roi_pool.h for what they compute).
#pragma once
#include "../common/host_device.h"

namespace minidl {
// input (batch, channels, height, width), rois (num_rois, 5) -> output and argmax, both
// (num_rois, channels, pooled_h, pooled_w); argmax = flat index into one height×width plane.
template <typename T>
void roi_pool_forward_cpu(const T* input, index_t batch, index_t channels, index_t height,
                          index_t width, const T* rois, index_t num_rois, double spatial_scale,
                          index_t pooled_h, index_t pooled_w, T* output, index_t* argmax);

// grad_input (batch, channels, height, width), zero on entry, receives every cell's gradient at
// its argmax. Deterministic: one thread owns each channel and adds in RoI order.
template <typename T>
void roi_pool_backward_cpu(const T* grad_output, const index_t* argmax, const T* rois,
                           index_t num_rois, index_t batch, index_t channels, index_t height,
                           index_t width, index_t pooled_h, index_t pooled_w, T* grad_input);
}  // namespace minidl
