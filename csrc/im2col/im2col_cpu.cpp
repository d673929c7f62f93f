// im2col_cpu.cpp — the CPU loops of im2col and col2im (OpenMP for large inputs).
//
// Two kinds of loop. The fast ones (im2col_cpu, col2im_cpu) copy and add whole runs with the
// index math hoisted out of the element loop — the same formulas as the per-element bodies of
// im2col.h, checked bit for bit against the NumPy reference. The GPU's loops, one body call per
// element (im2col_elementwise_cpu with im2col_element, col2im_gather_cpu with col2im_pixel),
// are compiled here too, so that the CPU tests run the very bodies the CUDA kernels call.
//
// The fast loops enumerate elements in the order they are written (no index divisions per element):
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

#include "../common/parallel.h"

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

// ceil(a / b) for a >= 0, b >= 1, written without the usual (a + b - 1) / b: a stride may be as
// large as int64 allows (it only has to be >= 1), and a + b - 1 would then overflow.
static index_t ceil_div(index_t a, index_t b) { return a / b + (a % b != 0); }

// First and one-past-last output coordinate o whose input coordinate o * stride + offset lies
// in [0, size): the interior of a row, where the bounds test can be skipped.
static void inside_range(index_t offset, index_t stride, index_t size, index_t out_size,
                         index_t* first, index_t* last) {
  const index_t lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
  const index_t hi = size - offset <= 0 ? 0 : ceil_div(size - offset, stride);
  *first = std::min(lo, out_size);
  *last = std::max(*first, std::min(hi, out_size));
}

// One contiguous run of the column matrix, row by row: out[oy][ox] = plane[oy·sh + dy][ox·sw + dx]
// inside the plane (height × width), 0 outside. For im2col's run of tap (i, j), dy = i·dh − ph
// and dx = j·dw − pw; the stride-2 phases call it with stride 1 on a phase. Output columns
// outside [first, last) look into the left/right zero padding and output rows whose input row is
// outside the plane into the top/bottom padding: both are written as zeros directly, so only
// the interior copies read the input (the values im2col_element would return, without its
// per-element index arithmetic and bounds test — rows here are as short as 8 pixels).
// kStride = 1 or 2 fixes sh = sw at compile time (0: read sh, sw).
template <typename T, int kStride>
static void copy_run(const T* plane, index_t height, index_t width, index_t dy, index_t dx,
                     index_t sh, index_t sw, index_t out_h, index_t out_w, T* out) {
  if (kStride) sh = sw = kStride;
  index_t first, last;  // the output columns whose pixel is inside the plane's width
  inside_range(dx, sw, width, out_w, &first, &last);
  for (index_t oy = 0; oy < out_h; ++oy, out += out_w) {
    const index_t iy = oy * sh + dy;
    // The whole output row looks into the zero padding: above or below the plane, or no column
    // inside its width. (Then no pointer into the plane is formed either: for an empty plane
    // it may be null, and null + dx is undefined behaviour — UBSan found it at width 0.)
    if (iy < 0 || iy >= height || first == last) {
      for (index_t ox = 0; ox < out_w; ++ox) out[ox] = T(0);
      continue;
    }
    for (index_t ox = 0; ox < first; ++ox) out[ox] = T(0);
    const T* src = plane + iy * width + first * sw + dx;  // the pixel of output column `first`
    for (index_t k = 0; k < last - first; ++k) out[first + k] = src[k * sw];
    for (index_t ox = last; ox < out_w; ++ox) out[ox] = T(0);
  }
}

// The transpose of copy_run: add the run's entries whose pixel lies inside the plane into it.
template <typename T, int kStride>
static void add_run(const T* run, index_t dy, index_t dx, index_t sh, index_t sw, index_t out_h,
                    index_t out_w, index_t height, index_t width, T* plane) {
  if (kStride) sh = sw = kStride;
  index_t first, last;
  inside_range(dx, sw, width, out_w, &first, &last);
  if (first == last) return;  // no entry lands inside the width
  for (index_t oy = 0; oy < out_h; ++oy, run += out_w) {
    const index_t iy = oy * sh + dy;
    if (iy < 0 || iy >= height) continue;  // this output row saw only zero padding
    T* dst = plane + iy * width + first * sw + dx;
    for (index_t k = 0; k < last - first; ++k) dst[k * sw] += run[first + k];
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
  if (q1 > q0) std::copy(plane + q0 + shift, plane + q1 + shift, out + q0);  // (plane may be null)
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

// A stride-1 run out of one phase (rows × cols): out[oy][ox] = phase[oy + dy][ox + dx].
template <typename T>
static void copy_from_phase(const T* phase, index_t rows, index_t cols, index_t dy, index_t dx,
                            const ConvGeometry& g, T* out) {
  if (g.out_w == cols)  // e.g. 3×3, padding 1, even width: one block copy, as for stride 1
    return copy_shifted_block(phase, rows, cols, dy, dx, g.out_h, out);
  copy_run<T, 1>(phase, rows, cols, dy, dx, 1, 1, g.out_h, g.out_w, out);
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
  const PlanePhases ph(g.height, g.width);
  // One task = one input plane (n, c): its kh*kw rows of the column matrix, each a contiguous
  // run of out_h * out_w entries. The plane is read kh*kw times while it sits in the L1/L2
  // cache, and the index arithmetic (divisions) is paid once per plane, not once per run.
  FirstError error;  // the scratch allocation may throw: never out of the region (parallel.h)
#pragma omp parallel if (g.channels * taps * g.batch * plane >= kParallelElements)
  {
    std::vector<T> phases;  // one per thread
    error.run([&] { phases.resize(use_phases ? ph.total : 0); });
#pragma omp for schedule(static)
    for (index_t task = 0; task < g.channels * g.batch; ++task) error.run([&] {
      const index_t c = task / g.batch, n = task % g.batch;
      const T* src = x + (n * g.channels + c) * g.height * g.width;
      if (use_phases) move_phases<true>(src, g.height, g.width, ph, phases.data());
      T* out = cols + c * taps * g.col_stride + n * plane;  // row (c, 0, 0), image n
      for (index_t i = 0; i < g.kernel_h; ++i)
        for (index_t j = 0; j < g.kernel_w; ++j, out += g.col_stride) {
          const index_t dy = i * g.dilation_h - g.pad_h, dx = j * g.dilation_w - g.pad_w;
          if (use_phases) {
            index_t p, q, phase_dy, phase_dx;
            phase_of(dy, &p, &phase_dy);
            phase_of(dx, &q, &phase_dx);
            copy_from_phase(phases.data() + ph.start[p][q], ph.rows[p], ph.cols[q], phase_dy,
                            phase_dx, g, out);
          } else if (same_width) {
            copy_shifted_block(src, g.height, g.width, dy, dx, g.out_h, out);
          } else {
            copy_run<T, kStride>(src, g.height, g.width, dy, dx, g.stride_h, g.stride_w, g.out_h,
                                 g.out_w, out);
          }
        }
    });
  }
  error.rethrow();
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
// Stride 2 adds into the plane's four phases instead (contiguous adds; see "stride 2" above) and
// interleaves them back into the plane at the end.
template <typename T, int kStride>
static void col2im_plane(const T* cols, const ConvGeometry& g, index_t n, index_t c,
                         const PlanePhases& ph, T* phases, T* out) {
  constexpr bool kPhases = kStride == 2;
  const index_t row_length = g.col_stride;
  if (kPhases)
    std::fill(phases, phases + ph.total, T(0));
  else
    std::fill(out, out + g.height * g.width, T(0));
  for (index_t i = 0; i < g.kernel_h; ++i)
    for (index_t j = 0; j < g.kernel_w; ++j) {
      const T* run = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * row_length +
                     n * g.out_h * g.out_w;
      const index_t dy = i * g.dilation_h - g.pad_h, dx = j * g.dilation_w - g.pad_w;
      if (kPhases) {
        index_t p, q, phase_dy, phase_dx;
        phase_of(dy, &p, &phase_dy);
        phase_of(dx, &q, &phase_dx);
        add_run<T, 1>(run, phase_dy, phase_dx, 1, 1, g.out_h, g.out_w, ph.rows[p], ph.cols[q],
                      phases + ph.start[p][q]);
      } else {
        add_run<T, kStride>(run, dy, dx, g.stride_h, g.stride_w, g.out_h, g.out_w, g.height,
                            g.width, out);
      }
    }
  if (kPhases) move_phases<false>(out, g.height, g.width, ph, phases);
}

template <typename T, int kStride>
static void col2im_planes(const T* cols, const ConvGeometry& g, T* x) {
  const index_t planes = g.batch * g.channels, plane_size = g.height * g.width;
  const PlanePhases ph(g.height, g.width);  // used for stride 2 only
  // Planes in (c, n) order: consecutive planes then read consecutive pieces of the same
  // kh*kw rows of cols (kh*kw sequential streams), not pieces kh*kw*row_length apart.
  FirstError error;
#pragma omp parallel if (planes * plane_size >= kParallelElements)
  {
    std::vector<T> phases;  // one per thread
    error.run([&] { phases.resize(kStride == 2 ? ph.total : 0); });
#pragma omp for schedule(static)
    for (index_t p = 0; p < planes; ++p) error.run([&] {
      const index_t c = p / g.batch, n = p % g.batch;
      col2im_plane<T, kStride>(cols, g, n, c, ph, phases.data(),
                               x + (n * g.channels + c) * plane_size);
    });
  }
  error.rethrow();
}

template <typename T>
void col2im_cpu(const T* cols, const ConvGeometry& g, T* x) {
  with_compiled_stride(g, [&](auto stride) { col2im_planes<T, decltype(stride)::value>(cols, g, x); });
}

// The CUDA im2col kernel's loop on the CPU: every column entry e is unpacked into (c, i, j) and
// (n, oy, ox) exactly as one GPU thread does it and filled by im2col_element, the body the GPU
// runs. Not the fast CPU path (that copies whole runs, above); it exists so that the CPU tests
// check, against the NumPy reference, the per-entry code the GPU executes.
template <typename T>
void im2col_elementwise_cpu(const T* x, const ConvGeometry& g, T* cols) {
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
template void im2col_elementwise_cpu<float>(const float*, const ConvGeometry&, float*);
template void im2col_elementwise_cpu<double>(const double*, const ConvGeometry&, double*);
template void col2im_gather_cpu<float>(const float*, const ConvGeometry&, float*);
template void col2im_gather_cpu<double>(const double*, const ConvGeometry&, double*);
}  // namespace minidl
