// im2col_cpu.cpp — loops calling the shared bodies of im2col.h (OpenMP for large inputs).
//
// The loops enumerate elements in the order they are written (no index divisions per element):
// im2col gives each task one input plane (n, c), which writes that plane's kh*kw runs of the
// column matrix; col2im gives each task one image plane. So every thread writes its own
// contiguous memory and no two threads touch the same address. Stride 2 (both directions) goes
// through a plane's four phases, which turns its strided copies and adds into contiguous ones
// (see "stride 2" below).
//
// Threads only from kParallelElements on. conv2d calls these kernels chunk by chunk between
// OpenBLAS GEMMs (see minidl/kernels/im2col.py); a chunk is kept below this size on purpose so
// that they run on the calling thread: handing both cores back and forth between the OpenMP
// and the OpenBLAS thread pools at every chunk costs more than it gains — a worker woken onto
// a core where the other pool's thread is still spinning waits for a whole scheduler time slice
// (measured: 0.15 ms calls taking 8 ms).
#include "im2col_cpu.h"

#include <algorithm>
#include <type_traits>
#include <vector>

namespace minidl {

constexpr index_t kParallelElements = index_t(1) << 22;  // 4M elements: 16 MB of float32

// Calls body(std::integral_constant<int, kStride>{}) with the stride compiled in when it is 1
// or 2 in both directions (kStride = 0: read from g at run time) — see first_tap in im2col.h.
template <typename Body>
static void with_compiled_stride(const ConvGeometry& g, Body&& body) {
  if (g.stride_h == 1 && g.stride_w == 1)
    body(std::integral_constant<int, 1>{});
  else if (g.stride_h == 2 && g.stride_w == 2)
    body(std::integral_constant<int, 2>{});
  else
    body(std::integral_constant<int, 0>{});
}

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
// output pixels — zeros in the padding, a plain (strided) copy inside. Output columns outside
// [first, last) look into the left/right zero padding and output rows whose input row is
// outside the image into the top/bottom padding: both are written as zeros directly, so only
// the interior copies read the input (the values im2col_element would return, without its
// per-element index arithmetic and bounds test — rows here are as short as 8 pixels).
template <typename T, int kStride>
static void im2col_run(const T* x, const ConvGeometry& g, index_t n, index_t c, index_t i,
                       index_t j, T* out) {
  const index_t sh = kStride ? kStride : g.stride_h, sw = kStride ? kStride : g.stride_w;
  index_t first, last;  // the output columns whose pixel is inside the image width
  inside_range(j * g.dilation_w - g.pad_w, sw, g.width, g.out_w, &first, &last);
  const T* plane = x + (n * g.channels + c) * g.height * g.width;
  const index_t x0 = first * sw - g.pad_w + j * g.dilation_w;  // input column of output `first`
  for (index_t oy = 0; oy < g.out_h; ++oy, out += g.out_w) {
    const index_t iy = oy * sh - g.pad_h + i * g.dilation_h;
    if (iy < 0 || iy >= g.height) {  // the whole output row looks into the zero padding
      for (index_t ox = 0; ox < g.out_w; ++ox) out[ox] = T(0);
      continue;
    }
    for (index_t ox = 0; ox < first; ++ox) out[ox] = T(0);
    const T* src = plane + iy * g.width + x0;
    for (index_t k = 0; k < last - first; ++k) out[first + k] = src[k * sw];
    for (index_t ox = last; ox < g.out_w; ++ox) out[ox] = T(0);
  }
}

// The same run for stride 1 when the output rows are as long as the input rows (out_w == width:
// "same" convolutions such as 3×3 with padding 1). Then consecutive output pixels read
// consecutive input pixels *across* row ends too, so the inside of the whole block is ONE
// contiguous copy of the input plane (shifted by the tap's offset); the pixels that wrapped
// around a row end belong to the zero padding and are overwritten with zeros afterwards.
// `plane` is (height, width), the run (out_h, width), out[oy][ox] = plane[oy + dy][ox + dx].
template <typename T>
static void copy_shifted_block(const T* plane, index_t height, index_t width, index_t dy,
                               index_t dx, index_t out_h, T* out) {
  const index_t plane_size = height * width;
  // Output rows [oy0, oy1) look into input rows inside the image.
  const index_t oy0 = std::min(std::max<index_t>(-dy, 0), out_h);
  const index_t oy1 = std::max(oy0, std::min(height - dy, out_h));
  // Output element q = oy * width + ox reads plane[q + shift]; copy the q of rows [oy0, oy1)
  // whose source lies inside the plane: oy0 * width <= q0 <= q1 <= oy1 * width.
  const index_t shift = dy * width + dx;
  const index_t q0 = std::min(std::max(oy0 * width, -shift), oy1 * width);
  const index_t q1 = std::max(q0, std::min(oy1 * width, plane_size - shift));
  std::fill(out, out + q0, T(0));
  std::copy(plane + q0 + shift, plane + q1 + shift, out + q0);
  std::fill(out + q1, out + out_h * width, T(0));
  // Re-zero the columns of each row that wrapped around a row end: column by column, since a
  // 3×3 tap wraps one column only (a std::fill per row would be one call per 1-element run).
  index_t first, last;  // the columns of a row that are inside the image width
  inside_range(dx, 1, width, width, &first, &last);
  auto zero_column = [&](index_t col) {
    for (index_t oy = oy0; oy < oy1; ++oy) out[oy * width + col] = T(0);
  };
  for (index_t col = 0; col < first; ++col) zero_column(col);
  for (index_t col = last; col < width; ++col) zero_column(col);
}

template <typename T>
static void im2col_run_same_width(const T* x, const ConvGeometry& g, index_t n, index_t c,
                                  index_t i, index_t j, T* out) {
  copy_shifted_block(x + (n * g.channels + c) * g.height * g.width, g.height, g.width,
                     i * g.dilation_h - g.pad_h, j * g.dilation_w - g.pad_w, g.out_h, out);
}

// ---- stride 2: a plane's four phases ----------------------------------------------------------
// A stride-2 tap (i, j) reads the pixels (2·oy + a, 2·ox + b) with a = i·dilation_h − pad_h,
// b = j·dilation_w − pad_w: every other row and column. Those pixels are exactly one *phase* of
// the plane — the sub-image of the pixels whose row and column have the parities of a and b (a
// space-to-depth split) — shifted by (floor(a/2), floor(b/2)). So every stride-2 run is a
// stride-1 copy out of one phase: split the plane once (it is in the L1 cache) and each tap
// becomes a contiguous copy instead of a stride-2 gather, and in col2im a contiguous add
// instead of a stride-2 read-modify-write (measured on 64×64 planes: 12 and 7 GB/s strided
// against 20 and 17 GB/s for stride 1). col2im adds each tap's run into its phase and
// interleaves the four phases back into the plane at the end; every pixel lives in one phase
// and still receives its taps in (i, j) order, so the sums stay bit for bit the reference's.
struct PlanePhases {
  index_t rows[2], cols[2];  // phase (p, q) holds the rows y ≡ p and columns x ≡ q (mod 2)
  index_t start[2][2];       // where phase (p, q) begins in a buffer of `total` elements
  index_t total = 0;
  PlanePhases(index_t height, index_t width) {
    for (int p = 0; p < 2; ++p) {
      rows[p] = (height - p + 1) / 2;
      cols[p] = (width - p + 1) / 2;
    }
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 2; ++q) start[p][q] = total, total += rows[p] * cols[q];
  }
};

// Where tap offset `a` (= tap · dilation − pad, possibly negative) lands: its phase parity
// and its shift inside that phase (floor division by 2).
static inline void phase_of(index_t a, index_t* parity, index_t* shift) {
  *parity = a & 1;  // two's complement: also right for negative a (-1 -> 1)
  *shift = (a - *parity) / 2;
}

// Copies a plane (height, width) into its phases (kToPhases) or the phases back into the plane.
template <bool kToPhases, typename PlaneT, typename PhasesT>
static void move_phases(PlaneT* plane, index_t height, index_t width, const PlanePhases& ph,
                        PhasesT* phases) {
  for (index_t y = 0; y < height; ++y) {
    PlaneT* row = plane + y * width;
    PhasesT* even = phases + ph.start[y & 1][0] + (y >> 1) * ph.cols[0];
    PhasesT* odd = phases + ph.start[y & 1][1] + (y >> 1) * ph.cols[1];
    for (index_t x = 0; x < ph.cols[0]; ++x) {  // ph.cols[1] is cols[0] or cols[0] - 1
      const bool has_odd = x < ph.cols[1];
      if constexpr (kToPhases) {
        even[x] = row[2 * x];
        if (has_odd) odd[x] = row[2 * x + 1];
      } else {
        row[2 * x] = even[x];
        if (has_odd) row[2 * x + 1] = odd[x];
      }
    }
  }
}

// A stride-1 run out of one phase (rows × cols): out[oy][ox] = phase[oy + dy][ox + dx] inside
// the phase, 0 outside (the zero padding); im2col_run's loop with stride 1.
template <typename T>
static void copy_from_phase(const T* phase, index_t rows, index_t cols, index_t dy, index_t dx,
                            const ConvGeometry& g, T* out) {
  if (g.out_w == cols)  // e.g. 3×3, padding 1, even width: one block copy, as for stride 1
    return copy_shifted_block(phase, rows, cols, dy, dx, g.out_h, out);
  index_t first, last;
  inside_range(dx, 1, cols, g.out_w, &first, &last);
  for (index_t oy = 0; oy < g.out_h; ++oy, out += g.out_w) {
    const index_t y = oy + dy;
    if (y < 0 || y >= rows) {
      for (index_t ox = 0; ox < g.out_w; ++ox) out[ox] = T(0);
      continue;
    }
    for (index_t ox = 0; ox < first; ++ox) out[ox] = T(0);
    const T* src = phase + y * cols + dx + first;  // (+ first: never points before the phase)
    for (index_t ox = first; ox < last; ++ox) out[ox] = src[ox - first];
    for (index_t ox = last; ox < g.out_w; ++ox) out[ox] = T(0);
  }
}

// The transpose of copy_from_phase: add a run's entries that lie inside the phase into it.
template <typename T>
static void add_into_phase(const T* run, index_t rows, index_t cols, index_t dy, index_t dx,
                           const ConvGeometry& g, T* phase) {
  index_t first, last;
  inside_range(dx, 1, cols, g.out_w, &first, &last);
  for (index_t oy = 0; oy < g.out_h; ++oy, run += g.out_w) {
    const index_t y = oy + dy;
    if (y < 0 || y >= rows) continue;
    T* dst = phase + y * cols + dx + first;
    for (index_t ox = first; ox < last; ++ox) dst[ox - first] += run[ox];
  }
}

// im2col of one plane (n, c) with stride 2: its kh*kw runs, each copied out of a phase.
template <typename T>
static void im2col_plane_stride2(const T* plane, const ConvGeometry& g, const PlanePhases& ph,
                                 T* phases, T* out) {
  move_phases<true>(plane, g.height, g.width, ph, phases);
  for (index_t i = 0; i < g.kernel_h; ++i) {
    index_t p, dy;
    phase_of(i * g.dilation_h - g.pad_h, &p, &dy);
    for (index_t j = 0; j < g.kernel_w; ++j, out += g.batch * g.out_h * g.out_w) {
      index_t q, dx;
      phase_of(j * g.dilation_w - g.pad_w, &q, &dx);
      copy_from_phase(phases + ph.start[p][q], ph.rows[p], ph.cols[q], dy, dx, g, out);
    }
  }
}

template <typename T, int kStride>
static void im2col_rows(const T* x, const ConvGeometry& g, T* cols) {
  const index_t taps = g.kernel_h * g.kernel_w;
  const index_t plane = g.out_h * g.out_w;
  const bool same_width = kStride == 1 && g.out_w == g.width;
  // Stride 2 through the phases — except a single tap (1×1 kernel), which reads one phase
  // once: there the split costs more than the strided copy it replaces (measured: 16×64×32×32
  // 0.18 ms strided, 0.22 ms through the phases).
  const bool use_phases = kStride == 2 && taps > 1;
  const PlanePhases phases_of_plane(g.height, g.width);
  // One task = one input plane (n, c): its kh*kw rows of the column matrix, each a contiguous
  // run of out_h * out_w entries. The plane is read kh*kw times while it sits in the L1/L2
  // cache, and the index arithmetic (divisions) is paid once per plane, not once per run.
#pragma omp parallel if (g.channels * taps * g.batch * plane >= kParallelElements)
  {
    std::vector<T> phases(use_phases ? phases_of_plane.total : 0);  // one per thread
#pragma omp for schedule(static)
    for (index_t task = 0; task < g.channels * g.batch; ++task) {
      const index_t c = task / g.batch, n = task % g.batch;
      T* out = cols + (c * taps * g.batch + n) * plane;  // row (c, 0, 0), image n
      if (use_phases) {
        im2col_plane_stride2(x + (n * g.channels + c) * g.height * g.width, g, phases_of_plane,
                             phases.data(), out);
        continue;
      }
      for (index_t i = 0; i < g.kernel_h; ++i)
        for (index_t j = 0; j < g.kernel_w; ++j, out += g.batch * plane) {
          if (same_width)
            im2col_run_same_width(x, g, n, c, i, j, out);
          else
            im2col_run<T, kStride>(x, g, n, c, i, j, out);
        }
    }
  }
}

template <typename T>
void im2col_cpu(const T* x, const ConvGeometry& g, T* cols) {
  with_compiled_stride(g, [&](auto stride) { im2col_rows<T, decltype(stride)::value>(x, g, cols); });
}

// One image plane (n, c) of col2im as a *scatter*: start from zeros and, for every kernel tap
// (i, j) in row-major order, add that tap's column entries into the pixels they were copied
// from. Every pixel thus receives its taps in the same order as in the gather col2im_pixel
// (and the NumPy reference), so the sums agree bit for bit. Why not the gather on the CPU: a
// plane is small enough to stay in the L1/L2 cache while it is accumulated, and each tap's
// entries are one contiguous run of the column matrix read front to back — one stream instead of
// kh*kw, and plain (for stride 1: SIMD) adds. On the GPU one thread per pixel (the gather) needs
// no atomics; on the CPU one thread per plane needs none either.
template <typename T, int kStride>
static void col2im_plane_scatter(const T* cols, const ConvGeometry& g, index_t n, index_t c,
                                 T* out) {
  const index_t sh = kStride ? kStride : g.stride_h, sw = kStride ? kStride : g.stride_w;
  const index_t row_length = g.batch * g.out_h * g.out_w;
  std::fill(out, out + g.height * g.width, T(0));
  for (index_t i = 0; i < g.kernel_h; ++i) {
    for (index_t j = 0; j < g.kernel_w; ++j) {
      const T* run = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * row_length +
                     n * g.out_h * g.out_w;
      index_t first, last;  // the output columns whose pixel is inside the image width
      inside_range(j * g.dilation_w - g.pad_w, sw, g.width, g.out_w, &first, &last);
      const index_t count = last - first;
      for (index_t oy = 0; oy < g.out_h; ++oy) {
        const index_t iy = oy * sh - g.pad_h + i * g.dilation_h;
        if (iy < 0 || iy >= g.height) continue;  // this output row saw only zero padding
        const T* src = run + oy * g.out_w + first;
        T* dst = out + iy * g.width + (first * sw - g.pad_w + j * g.dilation_w);
        for (index_t k = 0; k < count; ++k) dst[k * sw] += src[k];
      }
    }
  }
}

// col2im of one plane with stride 2: every tap's run added into its phase (in (i, j) order),
// then the phases interleaved back into the plane, which this writes completely.
template <typename T>
static void col2im_plane_stride2(const T* cols, const ConvGeometry& g, index_t n, index_t c,
                                 const PlanePhases& ph, T* phases, T* out) {
  const index_t row_length = g.batch * g.out_h * g.out_w;
  std::fill(phases, phases + ph.total, T(0));
  for (index_t i = 0; i < g.kernel_h; ++i) {
    index_t p, dy;
    phase_of(i * g.dilation_h - g.pad_h, &p, &dy);
    for (index_t j = 0; j < g.kernel_w; ++j) {
      index_t q, dx;
      phase_of(j * g.dilation_w - g.pad_w, &q, &dx);
      const T* run = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * row_length +
                     n * g.out_h * g.out_w;
      add_into_phase(run, ph.rows[p], ph.cols[q], dy, dx, g, phases + ph.start[p][q]);
    }
  }
  move_phases<false>(out, g.height, g.width, ph, phases);
}

template <typename T, int kStride>
static void col2im_planes(const T* cols, const ConvGeometry& g, T* x) {
  const index_t planes = g.batch * g.channels, plane_size = g.height * g.width;
  const PlanePhases phases_of_plane(g.height, g.width);  // used for stride 2 only
  // Planes in (c, n) order: consecutive planes then read consecutive pieces of the same
  // kh*kw rows of cols (kh*kw sequential streams), not pieces kh*kw*row_length apart.
#pragma omp parallel if (planes * plane_size >= kParallelElements)
  {
    std::vector<T> phases(kStride == 2 ? phases_of_plane.total : 0);  // one per thread
#pragma omp for schedule(static)
    for (index_t p = 0; p < planes; ++p) {
      const index_t c = p / g.batch, n = p % g.batch;
      T* out = x + (n * g.channels + c) * plane_size;
      if (kStride == 2)
        col2im_plane_stride2(cols, g, n, c, phases_of_plane, phases.data(), out);
      else
        col2im_plane_scatter<T, kStride>(cols, g, n, c, out);
    }
  }
}

template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x) {
  with_compiled_stride(g, [&](auto stride) { col2im_planes<T, decltype(stride)::value>(cols, g, x); });
}

// The CUDA kernel's loop on the CPU: every pixel gathers its taps with col2im_pixel, the body
// the GPU runs (one thread per pixel there). Not the fast CPU path; it exists so that the CPU
// tests check, against the NumPy reference, exactly the per-pixel code the GPU executes.
template <typename T, int kStride>
static void col2im_gather_planes(const T* cols, const ConvGeometry& g, T* x) {
  const index_t planes = g.batch * g.channels;
#pragma omp parallel for schedule(static) if (planes * g.height * g.width >= kParallelElements)
  for (index_t p = 0; p < planes; ++p) {
    T* out = x + p * g.height * g.width;
    for (index_t y = 0; y < g.height; ++y)
      for (index_t xx = 0; xx < g.width; ++xx)
        out[y * g.width + xx] = col2im_pixel<T, kStride>(cols, g, p / g.channels,
                                                         p % g.channels, y, xx);
  }
}

template <typename T>
void col2im_gather_cpu(const T* cols, const ConvGeometry& g, T* x) {
  with_compiled_stride(g, [&](auto stride) {
    col2im_gather_planes<T, decltype(stride)::value>(cols, g, x);
  });
}

template void im2col_cpu<float>(const float*, const ConvGeometry&, float*);
template void im2col_cpu<double>(const double*, const ConvGeometry&, double*);
template void col2im_cpu<float>(const float*, const ConvGeometry&, float*);
template void col2im_cpu<double>(const double*, const ConvGeometry&, double*);
template void col2im_gather_cpu<float>(const float*, const ConvGeometry&, float*);
template void col2im_gather_cpu<double>(const double*, const ConvGeometry&, double*);
}  // namespace minidl
