// winograd_cpu.h — the CPU launchers' declarations (see winograd.h for the math and layouts).
#pragma once
#include "winograd.h"

namespace minidl {
// x (N, C, H, W) -> V (B, C, P), B = (m + 2)² blocks for tiles of m = g.tile: every entry written.
template <typename T>
void winograd_input_transform_cpu(const T* x, const WinogradGeometry& g, T* V);

// M (B, F, P) -> y (N, F, out_h, out_w) (+ bias[f], bias may be null): every entry written.
template <typename T>
void winograd_output_transform_cpu(const T* M, const WinogradGeometry& g, index_t filters,
                                   const T* bias, T* y);

// The backward's adjoints (winograd.h): dy (N, F, out_h, out_w) -> dM (B, F, P), every entry
// written; dV (B, C, P) -> dx (N, C, H, W), every pixel written (a gather per pixel).
template <typename T>
void winograd_output_adjoint_cpu(const T* dy, const WinogradGeometry& g, index_t filters, T* dM);
template <typename T>
void winograd_input_adjoint_cpu(const T* dV, const WinogradGeometry& g, T* dx);

// The fast form (winograd_cpu_fast.cpp), the same arguments and results bit for bit: a row of
// tiles per task, branch-free over the tiles. minidl._C runs it unless fast=False.
template <typename T>
void winograd_input_transform_cpu_fast(const T* x, const WinogradGeometry& g, T* V);
template <typename T>
void winograd_output_transform_cpu_fast(const T* M, const WinogradGeometry& g, index_t filters,
                                        const T* bias, T* y);
// dy -> dM, and dV -> dx as a scatter per plane in the gather's order (the same sums, bit for bit).
template <typename T>
void winograd_output_adjoint_cpu_fast(const T* dy, const WinogradGeometry& g, index_t filters, T* dM);
template <typename T>
void winograd_input_adjoint_cpu_fast(const T* dV, const WinogradGeometry& g, T* dx);
}  // namespace minidl
