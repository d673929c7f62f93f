// im2col_cpu.cpp — loops calling the shared bodies of im2col.h (OpenMP for large inputs).
//
// The loops enumerate elements in the order they are written (no index divisions per element):
// im2col gives each task whole rows of the column matrix, col2im whole image planes, so every
// thread writes its own contiguous memory and no two threads touch the same address.
//
// Threads only from kParallelElements on. conv2d calls these kernels chunk by chunk between
// OpenBLAS GEMMs (see minidl/kernels/im2col.py); a chunk is kept below this size on purpose so
// that they run on the calling thread: handing both cores back and forth between the OpenMP
// and the OpenBLAS thread pools at every chunk costs more than it gains — a worker woken onto
// a core where the other pool's thread is still spinning waits for a whole scheduler time slice
// (measured: 0.15 ms calls taking 8 ms).
#include "im2col_cpu.h"

#include <algorithm>

namespace minidl {

constexpr index_t kParallelElements = index_t(1) << 22;  // 4M elements: 16 MB of float32
constexpr int kLanes = 8;                                // pixels summed side by side (SIMD)

// First and one-past-last output coordinate o whose input coordinate o * stride + offset lies
// in [0, size): the interior of a row, where the bounds test can be skipped.
static void inside_range(index_t offset, index_t stride, index_t size, index_t out_size,
                         index_t* first, index_t* last) {
  const index_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const index_t hi = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
  *first = std::min(lo, out_size);
  *last = std::max(*first, std::min(hi, out_size));
}

// One contiguous run of the column matrix: row (c, i, j) for image n, all out_h * out_w
// output pixels — zeros in the padding, a plain (strided) copy inside.
template <typename T>
static void im2col_run(const T* x, const ConvGeometry& g, index_t n, index_t c, index_t i,
                       index_t j, T* out) {
  index_t first, last;  // the output columns whose pixel is inside the image width
  inside_range(j * g.dilation_w - g.pad_w, g.stride_w, g.width, g.out_w, &first, &last);
  for (index_t oy = 0; oy < g.out_h; ++oy, out += g.out_w) {
    const index_t iy = oy * g.stride_h - g.pad_h + i * g.dilation_h;
    if (iy < 0 || iy >= g.height) {  // the whole output row looks into the zero padding
      for (index_t ox = 0; ox < g.out_w; ++ox) out[ox] = im2col_element(x, g, n, c, i, j, oy, ox);
      continue;
    }
    for (index_t ox = 0; ox < first; ++ox) out[ox] = im2col_element(x, g, n, c, i, j, oy, ox);
    for (index_t ox = first; ox < last; ++ox)  // inside: no bounds test
      out[ox] = im2col_element<T, false>(x, g, n, c, i, j, oy, ox);
    for (index_t ox = last; ox < g.out_w; ++ox)
      out[ox] = im2col_element(x, g, n, c, i, j, oy, ox);
  }
}

template <typename T>
void im2col_cpu(const T* x, const ConvGeometry& g, T* cols) {
  const index_t taps = g.kernel_h * g.kernel_w;
  const index_t plane = g.out_h * g.out_w;
  const index_t rows = g.channels * taps;
  // One task = one (row, image) pair: a contiguous run of out_h * out_w column entries.
#pragma omp parallel for schedule(static) if (rows * g.batch * plane >= kParallelElements)
  for (index_t task = 0; task < rows * g.batch; ++task) {
    const index_t row = task / g.batch, n = task % g.batch;
    im2col_run(x, g, n, row / taps, (row % taps) / g.kernel_w, row % g.kernel_w,
               cols + (row * g.batch + n) * plane);
  }
}

// The pixels [first, last) of one axis all of whose taps land inside the output:
// p + pad - k * dilation in [0, out_size * stride) for every tap k.
static void interior_range(const index_t pad, const index_t kernel, const index_t stride,
                           const index_t dilation, const index_t size, const index_t out_size,
                           index_t* first, index_t* last) {
  *first = std::min(size, std::max<index_t>(0, (kernel - 1) * dilation - pad));
  *last = std::max(*first, std::min(size, out_size * stride - pad));
}

// One image plane (n, c) of col2im: border pixels one by one, interior pixels in SIMD runs.
// (A plain function, so that the compiler optimizes it as such rather than as the body of an
// OpenMP region.)
template <typename T, int kStride>
static void col2im_plane(const T* cols, const ConvGeometry& g, index_t n, index_t c,
                         const index_t (&rows)[2], const index_t (&columns)[2], T* out) {
  const index_t sw = kStride ? kStride : g.stride_w;
  for (index_t y = 0; y < g.height; ++y, out += g.width) {
    if (y < rows[0] || y >= rows[1]) {  // a border row: pixel by pixel
      for (index_t xx = 0; xx < g.width; ++xx)
        out[xx] = col2im_pixel<T, kStride>(cols, g, n, c, y, xx);
      continue;
    }
    for (index_t xx = 0; xx < columns[0]; ++xx)
      out[xx] = col2im_pixel<T, kStride>(cols, g, n, c, y, xx);
    // The interior, one class of pixels a stride apart at a time, kLanes pixels per run.
    for (index_t r = columns[0]; r < std::min(columns[1], columns[0] + sw); ++r) {
      index_t xx = r;
      for (; xx + (kLanes - 1) * sw < columns[1]; xx += kLanes * sw)
        col2im_interior_run<T, kStride, kLanes>(cols, g, n, c, y, xx, out + xx);
      for (; xx + (kLanes / 2 - 1) * sw < columns[1]; xx += kLanes / 2 * sw)  // a shorter run
        col2im_interior_run<T, kStride, kLanes / 2>(cols, g, n, c, y, xx, out + xx);
      for (; xx < columns[1]; xx += sw) out[xx] = col2im_pixel<T, kStride>(cols, g, n, c, y, xx);
    }
    for (index_t xx = columns[1]; xx < g.width; ++xx)
      out[xx] = col2im_pixel<T, kStride>(cols, g, n, c, y, xx);
  }
}

template <typename T, int kStride>
static void col2im_planes(const T* cols, const ConvGeometry& g, T* x) {
  const index_t planes = g.batch * g.channels;
  index_t rows[2], columns[2];  // the interior: [first, last) along each axis
  interior_range(g.pad_h, g.kernel_h, g.stride_h, g.dilation_h, g.height, g.out_h, &rows[0],
                 &rows[1]);
  interior_range(g.pad_w, g.kernel_w, g.stride_w, g.dilation_w, g.width, g.out_w, &columns[0],
                 &columns[1]);
#pragma omp parallel for schedule(static) if (planes * g.height * g.width >= kParallelElements)
  for (index_t p = 0; p < planes; ++p)
    col2im_plane<T, kStride>(cols, g, p / g.channels, p % g.channels, rows, columns,
                             x + p * g.height * g.width);
}

template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x) {
  // The common strides get a compiled-in stride (see first_tap in im2col.h).
  if (g.stride_h == 1 && g.stride_w == 1)
    col2im_planes<T, 1>(cols, g, x);
  else if (g.stride_h == 2 && g.stride_w == 2)
    col2im_planes<T, 2>(cols, g, x);
  else
    col2im_planes<T, 0>(cols, g, x);
}

template void im2col_cpu<float>(const float*, const ConvGeometry&, float*);
template void im2col_cpu<double>(const double*, const ConvGeometry&, double*);
template void col2im_cpu<float>(const float*, const ConvGeometry&, float*);
template void col2im_cpu<double>(const double*, const ConvGeometry&, double*);
}  // namespace minidl
