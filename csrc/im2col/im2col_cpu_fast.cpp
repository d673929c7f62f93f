// im2col_cpu_fast.cpp — the fast CPU im2col and col2im (minidl._C's default form).
//
// The same numbers as the textbook form (im2col_cpu.cpp, one body call per element), bit for
// bit, computed in whole runs: a task owns one image plane (n, c). im2col writes that plane's
// kh*kw runs of the column matrix (im2col_runs.h), reading the plane kh*kw times while it sits
// in the L1/L2 cache; col2im accumulates the plane from its kh*kw runs. So every thread writes
// its own contiguous memory, no two threads touch the same address, and the index arithmetic
// (divisions) is paid once per plane, not once per element. Stride 2 (both directions) goes
// through the plane's four phases, which turns its strided copies and adds into contiguous
// ones (im2col_phases.h). Measured against the body form in docs/conv.md.
#include <algorithm>
#include <vector>

#include "../common/parallel.h"
#include "im2col_cpu.h"
#include "im2col_phases.h"

namespace minidl {

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
void im2col_cpu_fast(const T* x, const ConvGeometry& g, T* cols) {
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
// Stride 2 adds into the plane's four phases instead (contiguous adds; im2col_phases.h) and
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
void col2im_cpu_fast(const T* cols, const ConvGeometry& g, T* x) {
  with_compiled_stride(g, [&](auto stride) { col2im_planes<T, decltype(stride)::value>(cols, g, x); });
}

template void im2col_cpu_fast<float>(const float*, const ConvGeometry&, float*);
template void im2col_cpu_fast<double>(const double*, const ConvGeometry&, double*);
template void col2im_cpu_fast<float>(const float*, const ConvGeometry&, float*);
template void col2im_cpu_fast<double>(const double*, const ConvGeometry&, double*);
}  // namespace minidl
