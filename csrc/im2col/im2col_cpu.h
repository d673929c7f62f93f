// im2col_cpu.h — the CPU launchers' declarations (see im2col.h for the layout and the math),
// and the two things both CPU forms share: when to use threads, and the compiled-in stride.
#pragma once
#include <type_traits>

#include "im2col.h"

namespace minidl {

// The textbook form (im2col_cpu.cpp): one loop iteration per column entry / image pixel,
// calling the body of im2col.h that the CUDA kernels call — im2col_element, col2im_pixel.
// x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w), every entry written.
template <typename T>
void im2col_cpu(const T* x, const ConvGeometry& g, T* cols);
// cols -> x (N, C, H, W), every pixel written (no zeroing needed): a gather per pixel.
template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x);

// The fast form (im2col_cpu_fast.cpp), the same arguments and results bit for bit: whole runs
// copied and added, index math hoisted out of the element loop. minidl._C runs it unless
// fast=False (minidl.kernels.use("body")).
template <typename T>
void im2col_cpu_fast(const T* x, const ConvGeometry& g, T* cols);
template <typename T>
void col2im_cpu_fast(const T* cols, const ConvGeometry& g, T* x);

// Threads only from this many elements on. conv2d calls these kernels chunk by chunk between
// OpenBLAS GEMMs (minidl/kernels/im2col.py); a chunk is kept below this size on purpose so
// that they run on the calling thread: handing both cores back and forth between the OpenMP
// and the OpenBLAS thread pools at every chunk costs more than it gains — a worker woken onto
// a core where the other pool's thread is still spinning waits for a whole scheduler time
// slice (measured: 0.15 ms calls taking 8 ms).
constexpr index_t kParallelElements = index_t(1) << 22;  // 4M elements: 16 MB of float32

// Calls body(std::integral_constant<int, kStride>{}) with the stride compiled in when it is 1
// or 2 in both directions (kStride = 0: read from g at run time) — see first_tap in im2col.h.
template <typename Body>
inline void with_compiled_stride(const ConvGeometry& g, Body&& body) {
  if (g.stride_h == 1 && g.stride_w == 1)
    body(std::integral_constant<int, 1>{});
  else if (g.stride_h == 2 && g.stride_w == 2)
    body(std::integral_constant<int, 2>{});
  else
    body(std::integral_constant<int, 0>{});
}

}  // namespace minidl
