// winograd_cpu_fast.cpp — the fast CPU form of the Winograd transforms (minidl._C's default).
//
// The same arithmetic as the textbook form (winograd_cpu.cpp: one body call per tile, with a
// bounds test per pixel), bit for bit: each transform of a tile, X ↦ Bᵀ X B (or Aᵀ X A, A X Aᵀ,
// B X Bᵀ), is a one-dimensional transform of its columns, then of its rows — the functions
// winograd_bt/_b/_at/_a of winograd.h, whose sums are the bodies' sums in the bodies' order. Here
// a task is a block of whole tile rows of one plane (kBlockTiles below), and each of the two
// passes runs over every tile of the block at once:
//   * a plane's tiles are consecutive patches, so in each of the (m + 2)² blocks of V or M a
//     block of tile rows is one run of memory, read or written a run at a time;
//   * the tiles' rows are laid out so that a fixed column j of every tile is one run too: as the
//     tiles' columns (input transform: column j of tile tx is element m·tx + j), or *by phase*
//     (element x of a row at phase x % m, position x / m: column j is phase j % m from position
//     j / m) where the same element must not be computed twice (the adjoints, the output's rows);
//   * pass 1 transforms every column (one loop, the values of a column loaded from m + 2 — or m —
//     runs), pass 2 every row of every tile (one loop over the block's tiles).
// Every such loop is unit-stride with no branch, so the compiler vectorizes it — at the CPU's
// widest width (MINIDL_VECTOR_CLONES: AVX-512, AVX2 or the SSE2 baseline); the former per-tile
// loop, whose loads were m apart, had stayed scalar, and a loop per tile row (4 tiles at 16×16
// with F(4×4, 3×3)) had run in its scalar remainder. The input adjoint is a scatter per
// (image, channel) plane in the gather's order (below). Each function runs the code of the
// geometry's tile m = g.tile (2 or 4: a template argument inside). The loop bodies are written in
// the cloned functions themselves, not in lambdas (a lambda is compiled once, for the baseline
// width, whichever clone calls it); small inline helpers are inlined into each clone. Measured in
// docs/conv.md.
#include <algorithm>
#include <vector>

#include "../common/parallel.h"
#include "../common/vector_clones.h"
#include "winograd_cpu.h"

namespace minidl {

constexpr index_t kParallelRows = 64;  // rows of tiles; fewer: one thread (see im2col_cpu.h)
// A task's block of whole tile rows holds at least this many tiles (or the whole plane).
constexpr index_t kBlockTiles = 64;

// A plane's tile rows cut into blocks of `rows` whole rows — enough for kBlockTiles tiles, at most
// the plane's tiles_h: `per_plane` blocks of up to `tiles` tiles each (the last may have fewer
// rows). For a geometry with at least one tile row and column.
struct TileRowBlocks {
  index_t rows, per_plane, tiles;
  TileRowBlocks(index_t tiles_h, index_t tiles_w)
      : rows(std::min(tiles_h, (kBlockTiles + tiles_w - 1) / tiles_w)),
        per_plane((tiles_h + rows - 1) / rows), tiles(rows * tiles_w) {}
};

namespace {

// A row stored by phase: element x at phases[(x % m) · positions + x / m].
// Copies `count` source values to elements first, first + 1, … (the rest stays as it was): the
// positions q whose m elements all get a value m at a time (no division per value), the one or
// two partial positions at either end value by value.
template <int kM, typename T>
inline void scatter_to_phases(const T* source, index_t count, index_t first, index_t positions, T* phases) {
  const index_t end = first + count;                  // elements first … end − 1
  const index_t q_first = (first + kM - 1) / kM, q_last = std::max(q_first, end / kM);
  for (index_t x = first; x < std::min(kM * q_first, end); ++x)
    phases[(x % kM) * positions + x / kM] = source[x - first];
  for (index_t q = q_first; q < q_last; ++q)   // (source[i]: element first + i)
    for (int p = 0; p < kM; ++p) phases[p * positions + q] = source[kM * q + p - first];
  for (index_t x = std::max(kM * q_last, first); x < end; ++x)
    phases[(x % kM) * positions + x / kM] = source[x - first];
}

// The inverse: elements first … first + count − 1 of a row stored by phase, into dst[0 … count).
template <int kM, typename T>
inline void gather_from_phases(const T* phases, index_t positions, index_t first, index_t count, T* dst) {
  const index_t end = first + count;
  const index_t q_first = (first + kM - 1) / kM, q_last = std::max(q_first, end / kM);
  for (index_t x = first; x < std::min(kM * q_first, end); ++x)
    dst[x - first] = phases[(x % kM) * positions + x / kM];
  for (index_t q = q_first; q < q_last; ++q)   // (dst[i]: element first + i)
    for (int p = 0; p < kM; ++p) dst[kM * q + p - first] = phases[p * positions + q];
  for (index_t x = std::max(kM * q_last, first); x < end; ++x)
    dst[x - first] = phases[(x % kM) * positions + x / kM];
}

// Input row `source` (`width` values, zero outside) as the tiles' columns: column j of tile tx is
// element m·tx + j − pad, stored at cols[j · stride + tx] (zero outside the row). The tiles whose
// m + 2 elements all lie inside take them with no test; the one or two at either edge value by
// value (tile_columns_checked).
template <int kM, typename T>
inline void tile_columns_checked(const T* source, index_t width, index_t pad, index_t tx_first,
                                 index_t tx_end, index_t stride, T* cols) {
  for (index_t tx = tx_first; tx < tx_end; ++tx)
    for (int j = 0; j < WinogradTile<kM>::kPatch; ++j) {
      const index_t x = kM * tx + j - pad;
      cols[j * stride + tx] = x >= 0 && x < width ? source[x] : T(0);
    }
}

template <int kM, typename T>
inline void row_to_tile_columns(const T* source, index_t width, index_t pad, index_t tiles,
                                index_t stride, T* cols) {
  constexpr int kPatch = WinogradTile<kM>::kPatch;
  const index_t inner_first = std::min(tiles, (pad + kM - 1) / kM);   // m·tx − pad >= 0
  const index_t inner_last = width + pad >= kPatch                    // m·tx − pad + m + 2 <= width
      ? std::max(inner_first, std::min(tiles, (width + pad - kPatch) / kM + 1)) : inner_first;
  tile_columns_checked<kM>(source, width, pad, 0, inner_first, stride, cols);
  for (index_t tx = inner_first; tx < inner_last; ++tx)
    for (int j = 0; j < kPatch; ++j) cols[j * stride + tx] = source[kM * tx + j - pad];
  tile_columns_checked<kM>(source, width, pad, inner_last, tiles, stride, cols);
}

template <int kM, typename T>
MINIDL_VECTOR_CLONES void input_transform_fast(const T* x, const WinogradGeometry& g, T* V) {
  constexpr int kPatch = WinogradTile<kM>::kPatch;
  const index_t rows = g.batch * g.channels * g.tiles_h, tiles = g.tiles_w;
  if (rows == 0 || tiles == 0) return;  // nothing to write (and no buffer for an empty plane)
  // a task is a block of whole tile rows of one (image, channel) plane (kBlockTiles, above)
  const TileRowBlocks blocks(g.tiles_h, tiles);
  const index_t tasks = g.batch * g.channels * blocks.per_plane, size = kPatch * blocks.tiles;   // (j, tile)
  FirstError error;  // the buffers' allocation may throw: never out of the region
#pragma omp parallel if (rows >= kParallelRows && rows * tiles >= (index_t(1) << 18))
  {
    // row i of every tile's patch, by (column j, tile): input[i · size + j · blocks.tiles + t];
    // Bᵀ of their columns, row i: columns[i · size + …] the same way
    std::vector<T> input, columns;
    bool ready = false;              // (a thread whose buffers failed skips its tasks)
    error.run([&] {
      input.resize(kPatch * size);
      columns.resize(kPatch * size);
      ready = true;
    });
#pragma omp for schedule(static)
    for (index_t task = 0; task < tasks; ++task) {
      if (!ready) continue;
      const index_t plane_index = task / blocks.per_plane, first = task % blocks.per_plane * blocks.rows;
      const index_t c = plane_index % g.channels, n = plane_index / g.channels;
      const index_t count = std::min(blocks.rows, g.tiles_h - first) * tiles;   // the block's tiles
      const T* plane = x + (n * g.channels + c) * g.height * g.width;
      for (index_t ty = first; ty < first + count / tiles; ++ty)
        for (int i = 0; i < kPatch; ++i) {  // patch row i: input row m·ty − pad_h + i (zero outside)
          const index_t yy = kM * ty - g.pad_h + i;
          T* cols = input.data() + i * size + (ty - first) * tiles;
          if (yy >= 0 && yy < g.height)
            row_to_tile_columns<kM>(plane + yy * g.width, g.width, g.pad_w, tiles, blocks.tiles, cols);
          else
            for (int j = 0; j < kPatch; ++j) std::fill(cols + j * blocks.tiles, cols + j * blocks.tiles + tiles, T(0));
        }
      // pass 1: t = Bᵀ d for every column (every (j, tile) of the block)
#pragma omp simd
      for (index_t e = 0; e < size; ++e) {
        T column[kPatch], out[kPatch];
        for (int i = 0; i < kPatch; ++i) column[i] = input[i * size + e];
        winograd_bt(column, out);
        for (int i = 0; i < kPatch; ++i) columns[i * size + e] = out[i];
      }
      // pass 2: v = t B, row i of every tile
      T* out = V + c * g.patches + (n * g.tiles_h + first) * tiles;   // (consecutive)
      for (int i = 0; i < kPatch; ++i) {
        const T* t = columns.data() + i * size;
        T* v = out + i * kPatch * g.k_stride;
#pragma omp simd
        for (index_t p = 0; p < count; ++p) {
          T row[kPatch], o[kPatch];
          for (int j = 0; j < kPatch; ++j) row[j] = t[j * blocks.tiles + p];
          winograd_bt(row, o);
          for (int j = 0; j < kPatch; ++j) v[j * g.k_stride + p] = o[j];
        }
      }
    }
  }
  error.rethrow();
}

template <int kM, typename T>
MINIDL_VECTOR_CLONES void output_transform_fast(const T* M, const WinogradGeometry& g,
                                                index_t filters, const T* bias, T* y) {
  constexpr int kPatch = WinogradTile<kM>::kPatch;
  const index_t rows = g.batch * filters * g.tiles_h, tiles = g.tiles_w;
  if (rows == 0 || tiles == 0) return;
  // a task is a block of whole tile rows of one (image, filter) plane (kBlockTiles, above)
  const TileRowBlocks blocks(g.tiles_h, tiles);
  const index_t tasks = g.batch * filters * blocks.per_plane;
  FirstError error;
#pragma omp parallel if (rows >= kParallelRows && rows * tiles >= (index_t(1) << 18))
  {
    std::vector<T> columns, outputs;  // Aᵀ m per (row i, column j, tile); y by (row, phase, tile)
    bool ready = false;
    error.run([&] {
      columns.resize(kM * kPatch * blocks.tiles);
      outputs.resize(kM * kM * blocks.tiles);
      ready = true;
    });
#pragma omp for schedule(static)
    for (index_t task = 0; task < tasks; ++task) {
      if (!ready) continue;
      const index_t plane_index = task / blocks.per_plane, first = task % blocks.per_plane * blocks.rows;
      const index_t f = plane_index % filters, n = plane_index / filters;
      const index_t count = std::min(blocks.rows, g.tiles_h - first) * tiles;   // the block's tiles
      const T* in = M + f * g.patches + (n * g.tiles_h + first) * tiles;       // (consecutive)
      // pass 1: t = Aᵀ m, column j of every tile (the blocks k = (m + 2)·i + j, i < m + 2)
      for (int j = 0; j < kPatch; ++j) {
#pragma omp simd
        for (index_t t = 0; t < count; ++t) {
          T column[kPatch], o[kM];
          for (int i = 0; i < kPatch; ++i) column[i] = in[(kPatch * i + j) * g.k_stride + t];
          winograd_at(column, o);
          for (int i = 0; i < kM; ++i) columns[(i * kPatch + j) * blocks.tiles + t] = o[i];
        }
      }
      // pass 2: y = t A, row i of every tile, by phase: outputs[(i · m + jj) · blocks.tiles + t]
      for (int i = 0; i < kM; ++i) {
#pragma omp simd
        for (index_t t = 0; t < count; ++t) {
          T row[kPatch], o[kM];
          for (int j = 0; j < kPatch; ++j) row[j] = columns[(i * kPatch + j) * blocks.tiles + t];
          winograd_at(row, o);
          for (int jj = 0; jj < kM; ++jj) outputs[(i * kM + jj) * blocks.tiles + t] = o[jj];
        }
      }
      T* plane = y + (n * filters + f) * g.out_h * g.out_w;
      for (index_t ty = first; ty < first + count / tiles; ++ty)
        for (int i = 0; i < kM && kM * ty + i < g.out_h; ++i) {   // the overhang dropped here
          T* dst = plane + (kM * ty + i) * g.out_w;
          // output row m·ty + i: phase jj of its tiles at outputs[(i · m + jj) · blocks.tiles + …]
          gather_from_phases<kM>(outputs.data() + i * kM * blocks.tiles + (ty - first) * tiles,
                                 blocks.tiles, 0, g.out_w, dst);
          if (bias)  // (no bias: no + 0, which would turn a -0.0 into +0.0)
            for (index_t xx = 0; xx < g.out_w; ++xx) dst[xx] += bias[f];
        }
    }
  }
  error.rethrow();
}

template <int kM, typename T>
MINIDL_VECTOR_CLONES void output_adjoint_fast(const T* dy, const WinogradGeometry& g,
                                              index_t filters, T* dM) {
  constexpr int kPatch = WinogradTile<kM>::kPatch;
  const index_t rows = g.batch * filters * g.tiles_h, tiles = g.tiles_w;
  if (rows == 0 || tiles == 0) return;
  // a task is a block of whole tile rows of one (image, filter) plane (kBlockTiles, above)
  const TileRowBlocks blocks(g.tiles_h, tiles);
  const index_t tasks = g.batch * filters * blocks.per_plane, size = kM * blocks.tiles;   // (phase, tile)
  FirstError error;
#pragma omp parallel if (rows >= kParallelRows && rows * tiles >= (index_t(1) << 18))
  {
    // row a of every tile's dy, by (phase b, tile): input[a · size + b · blocks.tiles + t]
    // (zeros past the edge); A of their columns, row i: columns[i · size + …] the same way
    std::vector<T> input, columns;
    bool ready = false;
    error.run([&] {
      input.resize(kM * size);
      columns.resize(kPatch * size);
      ready = true;
    });
#pragma omp for schedule(static)
    for (index_t task = 0; task < tasks; ++task) {
      if (!ready) continue;
      const index_t plane_index = task / blocks.per_plane, first = task % blocks.per_plane * blocks.rows;
      const index_t f = plane_index % filters, n = plane_index / filters;
      const index_t count = std::min(blocks.rows, g.tiles_h - first) * tiles;   // the block's tiles
      const T* plane = dy + (n * filters + f) * g.out_h * g.out_w;
      std::fill(input.begin(), input.end(), T(0));
      for (index_t ty = first; ty < first + count / tiles; ++ty)
        for (int a = 0; a < kM && kM * ty + a < g.out_h; ++a)
          scatter_to_phases<kM>(plane + (kM * ty + a) * g.out_w, g.out_w, 0, blocks.tiles,
                                input.data() + a * size + (ty - first) * tiles);
      // pass 1: t = A dy for every column (every (phase, tile) of the block)
#pragma omp simd
      for (index_t e = 0; e < size; ++e) {
        T column[kM], o[kPatch];
        for (int a = 0; a < kM; ++a) column[a] = input[a * size + e];
        winograd_a(column, o);
        for (int i = 0; i < kPatch; ++i) columns[i * size + e] = o[i];
      }
      // pass 2: dm = t Aᵀ, row i of every tile (its m values at phases b)
      T* out = dM + f * g.patches + (n * g.tiles_h + first) * tiles;   // (consecutive)
      for (int i = 0; i < kPatch; ++i) {
        const T* t = columns.data() + i * size;
        T* dm = out + i * kPatch * g.k_stride;
#pragma omp simd
        for (index_t p = 0; p < count; ++p) {
          T row[kM], o[kPatch];
          for (int b = 0; b < kM; ++b) row[b] = t[b * blocks.tiles + p];
          winograd_a(row, o);
          for (int j = 0; j < kPatch; ++j) dm[j * g.k_stride + p] = o[j];
        }
      }
    }
  }
  error.rethrow();
}

// The input adjoint as a scatter per (image, channel) plane into a zeroed padded plane, then
// cropped into dx. Every pixel must receive its tiles' entries in the order of the gather
// (winograd_input_adjoint_pixel: the upper tile before the lower, the left before the right), so
// that the sums agree bit for bit — the same reasoning as col2im's scatter (im2col_cpu_fast.cpp),
// and for the same reason: each tile's entries are computed once instead of once per pixel that
// needs one. A pixel shared by two tiles is their rows (or columns) m, m + 1 and 0, 1; so the
// scatter adds entry (rr, s) of every tile at once, rr and s each in the order m, m + 1, 0 … m − 1:
// a pixel of four tiles then gets the upper-left tile's entry first and the lower-right's last.
// For one (rr, s), tile (ty, tx) goes to padded pixel (m·ty + rr, m·tx + s); the plane is stored
// by phase pair — pixel (Y, X) in the (Y % m, X % m) plane of positions (Y / m, X / m), rows of
// `positions` = tiles + 1 — so that the tiles' pixels are one run: position (ty + rr / m) ·
// positions + tx + s / m. The entries are kept in rows of `positions` too; their extra column is
// zero, and adding it changes no pixel (the plane starts at +0, so no pixel is ever −0). So each
// scatter step, and the first pass (dv Bᵀ), is one unit-stride loop over a block of whole tile
// rows (kBlockTiles); the second pass (B u), which writes the entries into those rows of
// `positions`, still loops per tile row. 3.6 → 1.4 ms for the adjoint at 16×128×16², where a loop
// per tile row of 4 tiles had run in its scalar remainder.
template <int kM, typename T>
MINIDL_VECTOR_CLONES void input_adjoint_fast(const T* dV, const WinogradGeometry& g, T* dx) {
  constexpr int kPatch = WinogradTile<kM>::kPatch;
  const index_t planes = g.batch * g.channels, tiles = g.tiles_w;
  const index_t positions = tiles + 1;                      // padded column X < m·tiles + 2
  const index_t phase_size = (g.tiles_h + 1) * positions;   // padded row Y < m·tiles_h + 2
  if (planes == 0 || g.height * g.width == 0) return;  // no pixel to write
  const TileRowBlocks blocks(g.tiles_h, tiles);
  const index_t block_size = blocks.rows * positions;   // a block in rows of `positions`
  FirstError error;
#pragma omp parallel if (planes >= 2 && planes * g.height * g.width >= (index_t(1) << 20))
  {
    std::vector<T> image, rows_b, entries;   // the padded plane by phase; dv B; B dv Bᵀ
    bool ready = false;
    error.run([&] {
      image.resize(kM * kM * phase_size);
      rows_b.resize(kPatch * kPatch * blocks.tiles);
      entries.resize(kPatch * kPatch * block_size);   // (the extra column stays zero)
      ready = true;
    });
#pragma omp for schedule(static)
    for (index_t plane = 0; plane < planes; ++plane) {
      if (!ready) continue;
      const index_t n = plane / g.channels, c = plane % g.channels;
      std::fill(image.begin(), image.end(), T(0));
      for (index_t first = 0; first < g.tiles_h; first += blocks.rows) {
        const index_t rows = std::min(blocks.rows, g.tiles_h - first), count = rows * tiles;
        const T* in = dV + c * g.patches + (n * g.tiles_h + first) * tiles;  // the block's tiles
        // u = dv Bᵀ: row k of every tile (its values at blocks (m + 2)·k + l)
        for (int k = 0; k < kPatch; ++k) {
#pragma omp simd
          for (index_t t = 0; t < count; ++t) {
            T row[kPatch], o[kPatch];
            for (int l = 0; l < kPatch; ++l) row[l] = in[(kPatch * k + l) * g.k_stride + t];
            winograd_b(row, o);
            for (int s = 0; s < kPatch; ++s) rows_b[(k * kPatch + s) * blocks.tiles + t] = o[s];
          }
        }
        // dd = B u: column s of every tile, into rows of `positions`
        for (int s = 0; s < kPatch; ++s)
          for (index_t ty = 0; ty < rows; ++ty) {
#pragma omp simd
            for (index_t tx = 0; tx < tiles; ++tx) {
              T column[kPatch], o[kPatch];
              for (int k = 0; k < kPatch; ++k) column[k] = rows_b[(k * kPatch + s) * blocks.tiles + ty * tiles + tx];
              winograd_b(column, o);
              for (int rr = 0; rr < kPatch; ++rr)
                entries[(rr * kPatch + s) * block_size + ty * positions + tx] = o[rr];
            }
          }
        // add entry (rr, s) of every tile: rr, then s, in the order m, m + 1, 0 … m − 1 (the
        // block's last extra column is left out: it would run past the phase plane)
        const index_t span = rows * positions - 1;
        for (int a = 0; a < kPatch; ++a) {
          const int rr = (a + kM) % kPatch;
          for (int b = 0; b < kPatch; ++b) {
            const int s = (b + kM) % kPatch;
            T* target = image.data() + ((rr % kM) * kM + s % kM) * phase_size
                        + (first + rr / kM) * positions + s / kM;
            const T* e = entries.data() + (rr * kPatch + s) * block_size;
#pragma omp simd
            for (index_t u = 0; u < span; ++u) target[u] += e[u];
          }
        }
      }
      // dx = the plane without its padding: padded pixel (y + pad_h, x + pad_w)
      T* out = dx + plane * g.height * g.width;
      for (index_t y = 0; y < g.height; ++y) {
        const index_t yy = y + g.pad_h;
        const T* row = image.data() + (yy % kM) * kM * phase_size + (yy / kM) * positions;
        gather_from_phases<kM>(row, phase_size, g.pad_w, g.width, out + y * g.width);
      }
    }
  }
  error.rethrow();
}

}  // namespace

template <typename T>
void winograd_input_transform_cpu_fast(const T* x, const WinogradGeometry& g, T* V) {
  (g.tile == 4 ? input_transform_fast<4, T> : input_transform_fast<2, T>)(x, g, V);
}

template <typename T>
void winograd_output_transform_cpu_fast(const T* M, const WinogradGeometry& g, index_t filters,
                                        const T* bias, T* y) {
  (g.tile == 4 ? output_transform_fast<4, T> : output_transform_fast<2, T>)(M, g, filters, bias, y);
}

template <typename T>
void winograd_output_adjoint_cpu_fast(const T* dy, const WinogradGeometry& g, index_t filters, T* dM) {
  (g.tile == 4 ? output_adjoint_fast<4, T> : output_adjoint_fast<2, T>)(dy, g, filters, dM);
}

template <typename T>
void winograd_input_adjoint_cpu_fast(const T* dV, const WinogradGeometry& g, T* dx) {
  (g.tile == 4 ? input_adjoint_fast<4, T> : input_adjoint_fast<2, T>)(dV, g, dx);
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
template void winograd_output_adjoint_cpu_fast<float>(const float*, const WinogradGeometry&, index_t,
                                                      float*);
template void winograd_output_adjoint_cpu_fast<double>(const double*, const WinogradGeometry&, index_t,
                                                       double*);
}  // namespace minidl
