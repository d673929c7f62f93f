// direct_conv_cpu.h — the CPU launchers' declarations (see direct_conv.h for what they compute).
#pragma once
#include "direct_conv.h"

namespace minidl {
// x (N, C, H, W), w (F, C, K, K), bias (F) or null -> y (N, F, out_h, out_w): every entry written.
template <typename T>
void direct_conv_cpu(const T* x, const T* w, const T* bias, const DirectConvGeometry& g, T* y);

// x (N, C, H, W), dy (N, F, out_h, out_w) -> dW (F, C, K, K): every entry written.
template <typename T>
void direct_conv_weight_grad_cpu(const T* x, const T* dy, const DirectConvGeometry& g, T* dW);

// The fast forms (direct_conv_cpu_fast.cpp): the same results to rounding. `padded` is the
// caller's scratch of (N, C, H + 2·pad_h, W + 2·pad_w) values, overwritten with the zero-padded x
// (for stride 2 with each row's even columns first, then its odd ones). They run AVX2 + FMA code
// (AVX-512 for the forward where present) for float32 on a CPU that has both, the loops above
// otherwise.
template <typename T>
void direct_conv_cpu_fast(const T* x, const T* w, const T* bias, const DirectConvGeometry& g,
                          T* padded, T* y);
template <typename T>
void direct_conv_weight_grad_cpu_fast(const T* x, const T* dy, const DirectConvGeometry& g,
                                      T* padded, T* dW);

// Whether the fast forms run their AVX2 + FMA code here (float32 on a CPU with both): the
// convolution lane (minidl/functional/conv_direct.py) is taken only where they do.
bool direct_conv_cpu_fast_available();

// The widest vectors the fast forward runs here: 16 floats (AVX-512, on rows of 16 outputs or
// more; narrower rows stay on AVX2), 8 (AVX2 + FMA) or 1 (the textbook loops). The weight gradient
// stays on AVX2 (a 16-lane version measured slower: docs/conv.md).
index_t direct_conv_cpu_fast_lanes();
// Allow 16 (the default) or only 8 lanes (the binding checks it is one of them) from now on, for
// every caller in the process (tests and benchmarks compare the two forms); returns the previous
// setting.
index_t direct_conv_cpu_fast_set_lanes(index_t lanes);
}  // namespace minidl
