// im2col_cpu.h — the CPU launchers' declarations (see im2col.h for the layout and the math).
#pragma once
#include "im2col.h"

namespace minidl {
// x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w), every entry written.
template <typename T>
void im2col_cpu(const T* x, const ConvGeometry& g, T* cols);

// cols (C*kh*kw, N*out_h*out_w) -> x (N, C, H, W), every pixel written (no zeroing needed).
template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x);
}  // namespace minidl
