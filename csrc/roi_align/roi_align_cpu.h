// roi_align_cpu.h — the CPU launchers' declarations (see roi_align.h for what they compute).
#pragma once
#include "../common/host_device.h"

namespace minidl {
// input (batch, channels, height, width), rois (num_rois, 5) -> output (num_rois, channels,
// pooled_h, pooled_w).
template <typename T>
void roi_align_forward_cpu(const T* input, index_t batch, index_t channels, index_t height,
                           index_t width, const T* rois, index_t num_rois, double spatial_scale,
                           index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                           bool aligned, T* output);

// grad_input (batch, channels, height, width), zero on entry. Deterministic: one (image, channel)
// plane per loop iteration, RoI after RoI, sample after sample (the fast form: a channel range).
template <typename T>
void roi_align_backward_cpu(const T* grad_output, const T* rois, index_t num_rois, index_t batch,
                            index_t channels, index_t height, index_t width, double spatial_scale,
                            index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                            bool aligned, T* grad_input);
// The fast lane (roi_align_cpu_fast.cpp), the same arguments and results: the taps of a RoI
// computed once and applied to every channel. minidl._C runs it unless fast=False.
template <typename T>
void roi_align_forward_cpu_fast(const T* input, index_t batch, index_t channels, index_t height,
                                index_t width, const T* rois, index_t num_rois,
                                double spatial_scale, index_t pooled_h, index_t pooled_w,
                                index_t sampling_ratio, bool aligned, T* output);
template <typename T>
void roi_align_backward_cpu_fast(const T* grad_output, const T* rois, index_t num_rois,
                                 index_t batch, index_t channels, index_t height, index_t width,
                                 double spatial_scale, index_t pooled_h, index_t pooled_w,
                                 index_t sampling_ratio, bool aligned, T* grad_input);

}  // namespace minidl
