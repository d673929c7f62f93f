// im2col_cpu.cpp — im2col and col2im on the CPU as the lecture writes them: an OpenMP loop
// calling the per-element bodies of im2col.h.
//
// The very code the CUDA kernels run (im2col_cuda.cu), one loop iteration where the GPU has
// one thread: im2col fills one column entry per iteration (im2col_element), col2im gathers
// one image pixel per iteration (col2im_pixel: the sum of the column entries copied from it,
// taps in row-major order). No two iterations write the same address, so no atomics and the
// sums are deterministic — in the order of the NumPy reference, so both agree bit for bit.
// The fast form of the same numbers is im2col_cpu_fast.cpp (minidl._C's default).
#include "im2col_cpu.h"

namespace minidl {

// Every column entry e = (row, col) is unpacked into the filter weight it multiplies,
// row = (c, i, j), and the output pixel it belongs to, col = (n, oy, ox) — the layout of im2col.h.
template <typename T>
void im2col_cpu(const T* x, const ConvGeometry& g, T* cols) {
  const index_t plane = g.out_h * g.out_w, row_length = g.batch * plane;
  const index_t taps = g.kernel_h * g.kernel_w, total = g.channels * taps * row_length;
#pragma omp parallel for schedule(static) if (total >= kParallelElements)
  for (index_t e = 0; e < total; ++e) {
    const index_t row = e / row_length, col = e % row_length;
    const index_t c = row / taps, i = (row % taps) / g.kernel_w, j = row % g.kernel_w;
    const index_t n = col / plane, oy = (col % plane) / g.out_w, ox = col % g.out_w;
    cols[row * g.col_stride + col] = im2col_element(x, g, n, c, i, j, oy, ox);
  }
}

// Every pixel e = (n, c, y, x) of the image gathers its taps (col2im_pixel); kStride = 1 or 2
// compiles the stride in (its divisions become nothing or shifts).
template <typename T, int kStride>
static void col2im_pixels(const T* cols, const ConvGeometry& g, T* x) {
  const index_t plane = g.height * g.width, total = g.batch * g.channels * plane;
#pragma omp parallel for schedule(static) if (total >= kParallelElements)
  for (index_t e = 0; e < total; ++e) {
    const index_t n = e / (g.channels * plane), c = e / plane % g.channels;
    const index_t y = e % plane / g.width, xx = e % g.width;
    x[e] = col2im_pixel<T, kStride>(cols, g, n, c, y, xx);
  }
}

template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x) {
  with_compiled_stride(g, [&](auto stride) { col2im_pixels<T, decltype(stride)::value>(cols, g, x); });
}

template void im2col_cpu<float>(const float*, const ConvGeometry&, float*);
template void im2col_cpu<double>(const double*, const ConvGeometry&, double*);
template void col2im_cpu<float>(const float*, const ConvGeometry&, float*);
template void col2im_cpu<double>(const double*, const ConvGeometry&, double*);
}  // namespace minidl
