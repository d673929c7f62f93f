// im2col_cpu.h — the CPU launchers' declarations (see im2col.h for the layout and the math).
#pragma once
#include "im2col.h"

namespace minidl {
// x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w), every entry written.
template <typename T>
void im2col_cpu(const T* x, const ConvGeometry& g, T* cols);

// cols (C*kh*kw, N*out_h*out_w) -> x (N, C, H, W), every pixel written (no zeroing needed):
// a scatter per image plane, the fast CPU form.
template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x);

// The same results computed as the CUDA kernels do it — im2col_element per column entry,
// col2im_pixel (a gather) per pixel — so that the CPU tests check the GPU's per-element bodies.
template <typename T>
void im2col_elementwise_cpu(const T* x, const ConvGeometry& g, T* cols);

template <typename T>
void col2im_gather_cpu(const T* cols, const ConvGeometry& g, T* x);
}  // namespace minidl
