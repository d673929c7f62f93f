// roi_align_cpu_fast.cpp — RoIAlign on the CPU, the fast lane (the default of minidl._C).
//
// roi_align_cpu.cpp is the lesson: one output cell per loop iteration, through the body the
// CUDA kernels call. This file computes the same numbers faster. The bilinear taps of a bin
// depend on the RoI and the bin, not on the channel: here they are computed once per RoI with
// the shared body's pieces (linear_tap / roi_align_tap) and applied to every channel — the
// forward as two small dense passes (below), the backward from a table of taps.
// tests/test_roi_ops.py checks both forms against the NumPy reference.
#include "roi_align_cpu.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../common/parallel.h"
#include "roi_align.h"

namespace minidl {

// The valid bilinear taps of cells [p0, p1) of a RoI: cell p's are taps[start[p - p0]] up to
// taps[start[p - p0 + 1]] (invalid taps contribute 0 and are left out). p1 grows until the table
// holds about kTableTaps taps, so it stays in cache (a huge RoI is done a few cells at a time).
constexpr std::size_t kTableTaps = 4096;

template <typename T>
static index_t fill_taps(const RoiAlignGeometry<T>& g, index_t p0, index_t cells, index_t pooled_w,
                         index_t height, index_t width, std::vector<BilinearTap<T>>& taps,
                         std::vector<std::size_t>& start) {
  taps.clear(), start.assign(1, 0);
  index_t p = p0;
  do {
    for (index_t iy = 0; iy < g.grid_h; ++iy)
      for (index_t ix = 0; ix < g.grid_w; ++ix) {
        const BilinearTap<T> t = roi_align_tap(g, p / pooled_w, p % pooled_w, iy, ix, height, width);
        if (t.valid) taps.push_back(t);
      }
    start.push_back(taps.size());
  } while (++p < cells && taps.size() < kTableTaps);
  return p;
}

// The forward pass uses that bilinear interpolation is separable: a sample's weight on pixel
// (y, x) is (its row weight of y) × (its column weight of x), and a sample outside the map along
// either axis has all its weights along that axis 0. Summing the samples of bin (ph, pw) gives
//     output[ph, pw] = sum_y Ry[ph, y] · sum_x Rx[pw, x] · X[y, x] / count,
// where Ry[ph, y] adds up the linear_tap weights of the bin's sample rows (Rx likewise). Two
// small dense passes per channel — rows first, then columns — replace the four gathered loads
// per sample of the tap-by-tap sum; the result equals roi_align_cell's up to float rounding.
template <typename T>
struct AxisWeights {
  index_t lo = 0, span = 0;          // the pixels lo .. lo + span - 1 carry weight
  std::vector<index_t> first, end;   // bin p weighs pixels [first[p], end[p])
  std::vector<T> w;                  // (bins, span): w[p * span + (pixel - lo)]

  void build(T start, T bin, index_t grid, index_t bins, index_t size) {
    first.assign(bins, size), end.assign(bins, 0);
    for (int pass = 0; pass < 2; ++pass) {  // pass 0: extents, pass 1: weights
      if (pass == 1) {
        lo = *std::min_element(first.begin(), first.end());
        span = std::max<index_t>(*std::max_element(end.begin(), end.end()) - lo, 0);
        w.assign(bins * span, T(0));
      }
      for (index_t p = 0; p < bins; ++p)
        for (index_t i = 0; i < grid; ++i) {
          const LinearTap<T> t = linear_tap(sample_position(start, bin, grid, p, i), size);
          if (!t.valid) continue;
          if (pass == 0) {
            first[p] = std::min(first[p], t.low), end[p] = std::max(end[p], t.high + 1);
          } else {
            w[p * span + t.low - lo] += t.w_low;
            w[p * span + t.high - lo] += t.w_high;
          }
        }
    }
  }
};

template <typename T>
void roi_align_forward_cpu_fast(const T* input, index_t batch, index_t channels, index_t height,
                           index_t width, const T* rois, index_t num_rois, double spatial_scale,
                           index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                           bool aligned, T* output) {
  const T scale = static_cast<T>(spatial_scale);
  const index_t plane = height * width, cells = pooled_h * pooled_w;
  if (num_rois * channels * cells == 0) return;  // an empty output: nothing to compute
  FirstError error;  // the weight tables allocate: a bad_alloc must not leave the region
#pragma omp parallel if (num_rois * channels * cells > 16384)
  {
    AxisWeights<T> ry, rx;      // per thread
    std::vector<T> rows;        // (ry.span, pooled_w): the column pass of one channel
#pragma omp for schedule(dynamic, 1)
    for (index_t k = 0; k < num_rois; ++k) error.run([&] {
      const RoiAlignGeometry<T> g =
          roi_align_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w, sampling_ratio, aligned);
      T* out = output + k * channels * cells;
      if (!g.valid) {
        std::fill(out, out + channels * cells, T(0));
        return;
      }
      ry.build(g.start_h, g.bin_h, g.grid_h, pooled_h, height);
      rx.build(g.start_w, g.bin_w, g.grid_w, pooled_w, width);
      rows.assign(ry.span * pooled_w, T(0));
      const T* image = input + g.batch * channels * plane;
      // A RoI wholly outside the map along an axis has no weights along it: span 0, an empty
      // table, every bin's [first, end) empty, so its cells are 0. Hence ws below points at
      // row p of the table (offset p * span, 0 then) and the `- lo` is applied only to the
      // index inside the loops: the pointer never leaves the table (an empty table's data()
      // may be null, and null - lo is undefined behaviour, as UBSan reported).
      for (index_t c = 0; c < channels; ++c, out += cells) {
        const T* x = image + c * plane;
        for (index_t y = 0; y < ry.span; ++y)  // rows[y][pw] = sum_x Rx[pw, x] · X[lo + y, x]
          for (index_t pw = 0; pw < pooled_w; ++pw) {
            const T* xs = x + (ry.lo + y) * width;
            const T* ws = rx.w.data() + pw * rx.span;  // Rx[pw, lo ..]
            T sum = T(0);
            for (index_t i = rx.first[pw]; i < rx.end[pw]; ++i) sum += ws[i - rx.lo] * xs[i];
            rows[y * pooled_w + pw] = sum;
          }
        for (index_t ph = 0; ph < pooled_h; ++ph)  // out[ph][pw] = sum_y Ry[ph, y] · rows[y][pw]
          for (index_t pw = 0; pw < pooled_w; ++pw) {
            const T* ws = ry.w.data() + ph * ry.span;  // Ry[ph, lo ..]
            T sum = T(0);
            for (index_t i = ry.first[ph]; i < ry.end[ph]; ++i)
              sum += ws[i - ry.lo] * rows[(i - ry.lo) * pooled_w + pw];
            out[ph * pooled_w + pw] = sum / g.count;
          }
      }
    });
  }
  error.rethrow();
}

template <typename T>
void roi_align_backward_cpu_fast(const T* grad_output, const T* rois, index_t num_rois, index_t batch,
                            index_t channels, index_t height, index_t width, double spatial_scale,
                            index_t pooled_h, index_t pooled_w, index_t sampling_ratio,
                            bool aligned, T* grad_input) {
  const T scale = static_cast<T>(spatial_scale);
  const index_t plane = height * width, cells = pooled_h * pooled_w;
  const PlainAdd add;
  // Every thread walks all RoIs in order but only touches its own channels [c0, c1): no two
  // threads write the same address, and each sum is formed in the same order every run.
  // (The taps of a RoI are computed by every thread — cheap next to the channel loop.)
  // The tap tables allocate, so each thread's whole share runs inside one error.run: a
  // bad_alloc must not leave the region (there is no worksharing loop here to keep in step).
  FirstError error;
#pragma omp parallel if (num_rois * channels * cells > 16384)
  error.run([&] {
    index_t c0 = 0, c1 = channels;
#ifdef _OPENMP
    const index_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    c0 = channels * id / threads, c1 = channels * (id + 1) / threads;
#endif
    std::vector<BilinearTap<T>> taps;
    std::vector<std::size_t> start;
    for (index_t k = 0; k < num_rois && c0 < c1; ++k) {
      const RoiAlignGeometry<T> g =
          roi_align_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w, sampling_ratio, aligned);
      if (!g.valid) continue;
      for (index_t p0 = 0, p1; p0 < cells; p0 = p1) {
        p1 = fill_taps(g, p0, cells, pooled_w, height, width, taps, start);
        for (index_t c = c0; c < c1; ++c) {
          T* grad_plane = grad_input + (g.batch * channels + c) * plane;
          const T* grad = grad_output + (k * channels + c) * cells;
          for (index_t p = p0; p < p1; ++p) {
            const T share = grad[p] / g.count;  // as in roi_align_cell_backward
            for (std::size_t j = start[p - p0]; j < start[p - p0 + 1]; ++j)
              tap_backward(grad_plane, taps[j], share, add);
          }
        }
      }
    }
  });
  error.rethrow();
}

template void roi_align_forward_cpu_fast<float>(const float*, index_t, index_t, index_t, index_t,
                                           const float*, index_t, double, index_t, index_t,
                                           index_t, bool, float*);
template void roi_align_forward_cpu_fast<double>(const double*, index_t, index_t, index_t, index_t,
                                            const double*, index_t, double, index_t, index_t,
                                            index_t, bool, double*);
template void roi_align_backward_cpu_fast<float>(const float*, const float*, index_t, index_t, index_t,
                                            index_t, index_t, double, index_t, index_t, index_t,
                                            bool, float*);
template void roi_align_backward_cpu_fast<double>(const double*, const double*, index_t, index_t,
                                             index_t, index_t, index_t, double, index_t, index_t,
                                             index_t, bool, double*);
}  // namespace minidl
