// winograd_cpu_fast.cpp — the fast CPU form of the Winograd transforms (minidl._C's default).
//
// The same arithmetic as the textbook form (winograd_cpu.cpp: one body call per tile, with a
// bounds test per pixel), bit for bit — winograd_input_values / winograd_output_values of
// winograd.h — but a task is one row of tiles, and its loop over the tiles has no branch:
//   * input: the 4 input rows the row of tiles reads are first copied into zero-padded row
//     buffers (the padding handled once per row, not per pixel), so tile tx reads
//     row[i][2·tx + j] unconditionally;
//   * output: the 2×2 blocks of a row of tiles go to two row buffers of 2·tiles_w values,
//     then the first out_w of each are copied to the output (the overhang dropped once).
// Without branches and with each of the 16 blocks of V (or M) read or written contiguously
// across tiles, the compiler vectorizes the tile loop. Measured in docs/conv.md.
#include <algorithm>
#include <vector>

#include "../common/parallel.h"
#include "winograd_cpu.h"

namespace minidl {

constexpr index_t kParallelRows = 64;  // rows of tiles; fewer: one thread (see im2col_cpu.h)

template <typename T>
void winograd_input_transform_cpu_fast(const T* x, const WinogradGeometry& g, T* V) {
  const index_t rows = g.batch * g.channels * g.tiles_h, span = 2 * g.tiles_w + 2;
  if (rows == 0 || g.tiles_w == 0) return;  // nothing to write (and no buffer for an empty plane)
  FirstError error;  // the row buffers' allocation may throw: never out of the region
#pragma omp parallel if (rows >= kParallelRows && rows * g.tiles_w >= (index_t(1) << 18))
  {
    std::vector<T> buffer;
    error.run([&] { buffer.resize(4 * span); });
#pragma omp for schedule(static)
    for (index_t r = 0; r < rows; ++r) error.run([&] {
      const index_t ty = r % g.tiles_h, c = r / g.tiles_h % g.channels, n = r / (g.tiles_h * g.channels);
      const T* plane = x + (n * g.channels + c) * g.height * g.width;
      T* row[4];
      for (int i = 0; i < 4; ++i) {  // input row 2·ty − pad_h + i, zero-padded, from column −pad_w
        row[i] = buffer.data() + i * span;
        std::fill(row[i], row[i] + span, T(0));
        const index_t yy = 2 * ty - g.pad_h + i;
        if (yy < 0 || yy >= g.height) continue;
        const index_t first = std::max<index_t>(0, g.pad_w), count = std::min(g.width, span - first);
        std::copy(plane + yy * g.width, plane + yy * g.width + count, row[i] + first);
      }
      T* out = V + c * g.patches + (n * g.tiles_h + ty) * g.tiles_w;
      for (index_t tx = 0; tx < g.tiles_w; ++tx) {
        T d[4][4], v[16];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) d[i][j] = row[i][2 * tx + j];
        winograd_input_values(d, v);
        for (int k = 0; k < 16; ++k) out[k * g.k_stride + tx] = v[k];
      }
    });
  }
  error.rethrow();
}

template <typename T>
void winograd_output_transform_cpu_fast(const T* M, const WinogradGeometry& g, index_t filters,
                                        const T* bias, T* y) {
  const index_t rows = g.batch * filters * g.tiles_h, span = 2 * g.tiles_w;
  if (rows == 0 || g.tiles_w == 0) return;
  FirstError error;
#pragma omp parallel if (rows >= kParallelRows && rows * g.tiles_w >= (index_t(1) << 18))
  {
    std::vector<T> buffer;
    error.run([&] { buffer.resize(2 * span); });
#pragma omp for schedule(static)
    for (index_t r = 0; r < rows; ++r) error.run([&] {
      const index_t ty = r % g.tiles_h, f = r / g.tiles_h % filters, n = r / (g.tiles_h * filters);
      const T* in = M + f * g.patches + (n * g.tiles_h + ty) * g.tiles_w;
      T* top = buffer.data();
      T* bottom = top + span;
      for (index_t tx = 0; tx < g.tiles_w; ++tx) {
        T m[16], out[2][2];
        for (int k = 0; k < 16; ++k) m[k] = in[k * g.k_stride + tx];
        winograd_output_values(m, out);
        top[2 * tx] = out[0][0], top[2 * tx + 1] = out[0][1];
        bottom[2 * tx] = out[1][0], bottom[2 * tx + 1] = out[1][1];
      }
      T* plane = y + (n * filters + f) * g.out_h * g.out_w;
      for (int i = 0; i < 2 && 2 * ty + i < g.out_h; ++i) {
        const T* src = i ? bottom : top;
        T* dst = plane + (2 * ty + i) * g.out_w;
        if (bias)  // (no bias: no + 0, which would turn a -0.0 into +0.0)
          for (index_t xx = 0; xx < g.out_w; ++xx) dst[xx] = src[xx] + bias[f];
        else
          std::copy_n(src, g.out_w, dst);
      }
    });
  }
  error.rethrow();
}

// The input adjoint as a scatter per (image, channel) plane: the tiles in order (rows of tiles
// top to bottom, each left to right) add their 16 entries of B dV Bᵀ (winograd_input_adjoint_values,
// the body's arithmetic) into a zeroed padded plane, which is then cropped into dx. Every pixel
// thus receives its tiles' entries in the order of the gather (winograd_input_adjoint_pixel: the
// upper tile before the lower, the left before the right), so the sums agree bit for bit — the
// same reasoning as col2im's scatter (im2col_cpu_fast.cpp), and for the same reason: each tile's
// 16 entries are computed once instead of once per pixel that needs one.
template <typename T>
void winograd_input_adjoint_cpu_fast(const T* dV, const WinogradGeometry& g, T* dx) {
  const index_t planes = g.batch * g.channels;
  const index_t rows = 2 * g.tiles_h + 2, cols = 2 * g.tiles_w + 2;
  if (planes == 0 || g.height * g.width == 0) return;  // no pixel to write
  FirstError error;
#pragma omp parallel if (planes >= 2 && planes * g.height * g.width >= (index_t(1) << 20))
  {
    std::vector<T> buffer;
    error.run([&] { buffer.resize(rows * cols); });
#pragma omp for schedule(static)
    for (index_t plane = 0; plane < planes; ++plane) error.run([&] {
      const index_t n = plane / g.channels, c = plane % g.channels;
      std::fill(buffer.begin(), buffer.end(), T(0));
      for (index_t ty = 0; ty < g.tiles_h; ++ty) {
        const T* tiles = dV + c * g.patches + (n * g.tiles_h + ty) * g.tiles_w;
        T* rows_of_tile = buffer.data() + 2 * ty * cols;
        for (index_t tx = 0; tx < g.tiles_w; ++tx) {
          T dv[16], dd[4][4];
          for (int k = 0; k < 16; ++k) dv[k] = tiles[k * g.k_stride + tx];
          winograd_input_adjoint_values(dv, dd);
          for (int r = 0; r < 4; ++r)
            for (int s = 0; s < 4; ++s) rows_of_tile[r * cols + 2 * tx + s] += dd[r][s];
        }
      }
      T* out = dx + plane * g.height * g.width;
      for (index_t y = 0; y < g.height; ++y)
        std::copy_n(buffer.data() + (y + g.pad_h) * cols + g.pad_w, g.width, out + y * g.width);
    });
  }
  error.rethrow();
}

template void winograd_input_adjoint_cpu_fast<float>(const float*, const WinogradGeometry&, float*);
template void winograd_input_adjoint_cpu_fast<double>(const double*, const WinogradGeometry&, double*);
template void winograd_input_transform_cpu_fast<float>(const float*, const WinogradGeometry&, float*);
template void winograd_input_transform_cpu_fast<double>(const double*, const WinogradGeometry&,
                                                        double*);
template void winograd_output_transform_cpu_fast<float>(const float*, const WinogradGeometry&,
                                                        index_t, const float*, float*);
template void winograd_output_transform_cpu_fast<double>(const double*, const WinogradGeometry&,
                                                         index_t, const double*, double*);
}  // namespace minidl
