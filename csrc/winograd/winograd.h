// winograd.h — the per-tile bodies of Winograd's F(2×2, 3×3) and F(4×4, 3×3) convolutions, shared
// by the CPU and CUDA launchers.
//
// Lecture 8's convolution is a matrix product, conv(x) = W @ im2col(x). Winograd's minimal
// filtering (Lavin & Gray, 2016) computes the same 3×3, stride-1 convolution with fewer
// multiplications: a 2×2 block of outputs needs a 4×4 patch d of the input, and
//
//     y (2×2) = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          g: one 3×3 filter (of one channel)
//
// — 16 multiplications instead of 2·2·9 = 36. Summed over input channels, the ⊙ becomes 16
// independent matrix products, one per position k = (ξ, ν) of the 4×4 grid:
//
//     M[k] (F × P) = U[k] (F × C) @ V[k] (C × P),   U = G g Gᵀ (filters), V = Bᵀ d B (input)
//
// with P = N · tiles_h · tiles_w patches (tile (ty, tx) of image n: the 4×4 patch at rows
// 2·ty − pad_h.., columns 2·tx − pad_w.., zero outside the image; neighbouring patches overlap
// by 2). The 16 products run through BLAS; this file holds the two data transforms:
//
//     V[k][c][p] = (Bᵀ d B)[k]   for patch p of channel c            winograd_input_tile
//     y[n][f][2ty + i][2tx + j] = (Aᵀ m A)[i][j],  m[k] = M[k][f][p]  winograd_output_tile
//
//     Bᵀ = | 1  0 -1  0 |     Aᵀ = | 1  1  1  0 |     G = |  1    0    0  |
//          | 0  1  1  0 |          | 0  1 -1 -1 |         | 1/2  1/2  1/2 |
//          | 0 -1  1  0 |                                 | 1/2 -1/2  1/2 |
//          | 0  1  0 -1 |                                 |  0    0    1  |
//
// (the filter transform, U = G g Gᵀ, is small and runs in NumPy/CuPy: minidl/kernels/winograd.py).
// Bᵀ and Aᵀ hold only 0 and ±1, so both transforms are additions: written out below.
// Layouts: V (16, C, P) and M (16, F, P), row-major within each k (k_stride apart: see
// WinogradGeometry); p = (n · tiles_h + ty) · tiles_w + tx.
//
// F(4×4, 3×3) is the same algorithm with larger tiles (the `tile` of the geometry, m = 4): a 4×4
// block of outputs from a 6×6 patch, 36 multiplications instead of 4·4·9 = 144 — 4× fewer than
// the direct sum, where F(2×2, 3×3) saves 2.25× — so 36 products M[k] = U[k] @ V[k] over P/4 as
// many patches: 0.56× the GEMM work of F(2×2, 3×3). Its matrices (Lavin & Gray's) hold 1, 2, 4, 5
// and 8, so its transforms are multiply-adds (written out below from the matrices; G in
// minidl/kernels/winograd.py); each body forms every sum from its first nonzero term in the
// matrix's order, as the NumPy reference does, so the two agree bit for bit. The larger constants
// cost accuracy: float32 results within ~1e-5 of the exact convolution relative to the largest
// output, against ~5e-7 for F(2×2, 3×3) (docs/conv.md).
#pragma once

#include "../common/host_device.h"

namespace minidl {

struct WinogradGeometry {
  index_t batch, channels, height, width;  // the input (N, C, H, W)
  index_t pad_h, pad_w;
  index_t tile;                            // m: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3)
  index_t out_h, out_w;                    // H + 2·pad − 2 (a 3×3 kernel, stride 1)
  index_t tiles_h, tiles_w;                // ceil(out / m): the last tile may hang over the edge
  index_t patches;                         // P = N · tiles_h · tiles_w
  // Elements from one k to the next in V (input transform) or M (output transform): C·P (or
  // F·P) when contiguous, more when padded — the CPU pads it off a multiple of 4 KB, or the 16
  // streams a tile reads or writes would all land in the same cache sets (as im2col's rows).
  index_t k_stride;
};

// ceil(out / tile) tiles, without forming out + tile − 1 (which could overflow near INT64_MAX).
inline index_t winograd_tiles(index_t out, index_t tile) { return out / tile + (out % tile != 0); }

inline WinogradGeometry make_winograd_geometry(index_t batch, index_t channels, index_t height,
                                               index_t width, index_t pad_h, index_t pad_w,
                                               index_t tile = 2) {
  WinogradGeometry g{batch, channels, height, width, pad_h, pad_w, tile, 0, 0, 0, 0, 0, 0};
  g.out_h = height + 2 * pad_h - 2;
  g.out_w = width + 2 * pad_w - 2;
  g.tiles_h = winograd_tiles(g.out_h, tile);
  g.tiles_w = winograd_tiles(g.out_w, tile);
  g.patches = batch * g.tiles_h * g.tiles_w;
  g.k_stride = channels * g.patches;  // contiguous V; a launcher may set a padded one
  return g;
}

// The geometry the output transform needs, from the output's shape (N, F, out_h, out_w).
inline WinogradGeometry make_winograd_output_geometry(index_t batch, index_t filters,
                                                      index_t out_h, index_t out_w,
                                                      index_t tile = 2) {
  WinogradGeometry g = make_winograd_geometry(batch, 0, out_h + 2, out_w + 2, 0, 0, tile);
  g.k_stride = filters * g.patches;   // contiguous M
  return g;
}

// ---- the one-dimensional transforms of F(2×2, 3×3), as functions of 4 (or 2) values -------------
// The rows of Bᵀ and Aᵀ (and of B and A, their columns) written out. The 2-D transforms of a tile
// below apply them to its columns, then its rows; the fast CPU form applies them to whole rows of
// tiles at once (winograd_cpu_fast.cpp). Overloaded by size with F(4×4, 3×3)'s.
template <typename T>
MINIDL_HD void winograd_bt(const T (&x)[4], T (&o)[4]) {  // o = Bᵀ x
  o[0] = x[0] - x[2];
  o[1] = x[1] + x[2];
  o[2] = x[2] - x[1];
  o[3] = x[1] - x[3];
}

template <typename T>
MINIDL_HD void winograd_b(const T (&x)[4], T (&o)[4]) {  // o = B x (the columns of Bᵀ)
  o[0] = x[0];
  o[1] = x[1] - x[2] + x[3];
  o[2] = -x[0] + x[1] + x[2];
  o[3] = -x[3];
}

template <typename T>
MINIDL_HD void winograd_at(const T (&x)[4], T (&o)[2]) {  // o = Aᵀ x
  o[0] = x[0] + x[1] + x[2];
  o[1] = x[1] - x[2] - x[3];
}

template <typename T>
MINIDL_HD void winograd_a(const T (&x)[2], T (&o)[4]) {  // o = A x (the columns of Aᵀ)
  o[0] = x[0];
  o[1] = x[0] + x[1];
  o[2] = x[0] - x[1];
  o[3] = -x[1];
}

// ---- F(4×4, 3×3): its matrices and their one-dimensional transforms ---------------------------
//     Bᵀ = | 4  0 -5  0  1  0 |     Aᵀ = | 1  1  1  1  1  0 |
//          | 0 -4 -4  1  1  0 |          | 0  1 -1  2 -2  0 |
//          | 0  4 -4 -1  1  0 |          | 0  1  1  4  4  0 |
//          | 0 -2 -1  2  1  0 |          | 0  1 -1  8 -8  1 |
//          | 0  2 -1 -2  1  0 |
//          | 0  4  0 -5  0  1 |
// Each sum is written out from the table's row, its terms in the row's order from the first
// nonzero one (Σ_k c_k · x_k; c = ±1 as a plain ±x_k, no 0 + …, which would turn −0.0 into +0.0):
// exactly what the NumPy reference computes from the same tables (minidl/kernels/winograd.py,
// _table_sum — a − c·b and a + (−c)·b are the same float), so the two agree bit for bit.

// o = Bᵀ x for 6 values (the rows of Bᵀ).
template <typename T>
MINIDL_HD void winograd_bt(const T (&x)[6], T (&o)[6]) {
  o[0] = T(4) * x[0] - T(5) * x[2] + x[4];
  o[1] = T(-4) * x[1] - T(4) * x[2] + x[3] + x[4];
  o[2] = T(4) * x[1] - T(4) * x[2] - x[3] + x[4];
  o[3] = T(-2) * x[1] - x[2] + T(2) * x[3] + x[4];
  o[4] = T(2) * x[1] - x[2] - T(2) * x[3] + x[4];
  o[5] = T(4) * x[1] - T(5) * x[3] + x[5];
}

// o = B x for 6 values (the columns of Bᵀ).
template <typename T>
MINIDL_HD void winograd_b(const T (&x)[6], T (&o)[6]) {
  o[0] = T(4) * x[0];
  o[1] = T(-4) * x[1] + T(4) * x[2] - T(2) * x[3] + T(2) * x[4] + T(4) * x[5];
  o[2] = T(-5) * x[0] - T(4) * x[1] - T(4) * x[2] - x[3] - x[4];
  o[3] = x[1] - x[2] + T(2) * x[3] - T(2) * x[4] - T(5) * x[5];
  o[4] = x[0] + x[1] + x[2] + x[3] + x[4];
  o[5] = x[5];
}

// o = Aᵀ x for 6 values (the rows of Aᵀ).
template <typename T>
MINIDL_HD void winograd_at(const T (&x)[6], T (&o)[4]) {
  o[0] = x[0] + x[1] + x[2] + x[3] + x[4];
  o[1] = x[1] - x[2] + T(2) * x[3] - T(2) * x[4];
  o[2] = x[1] + x[2] + T(4) * x[3] + T(4) * x[4];
  o[3] = x[1] - x[2] + T(8) * x[3] - T(8) * x[4] + x[5];
}

// o = A x for 4 values (the columns of Aᵀ).
template <typename T>
MINIDL_HD void winograd_a(const T (&x)[4], T (&o)[6]) {
  o[0] = x[0];
  o[1] = x[0] + x[1] + x[2] + x[3];
  o[2] = x[0] - x[1] + x[2] - x[3];
  o[3] = x[0] + T(2) * x[1] + T(4) * x[2] + T(8) * x[3];
  o[4] = x[0] - T(2) * x[1] + T(4) * x[2] - T(8) * x[3];
  o[5] = x[3];
}

// ---- the four 2-D transforms of a tile, for both tiles -----------------------------------------
// Each is a 1-D transform of every column, then of every row (X ↦ Bᵀ X B, Aᵀ X A, A X Aᵀ, B X Bᵀ),
// with winograd_bt/_b/_at/_a above — overloaded by size, so the same body serves F(2×2, 3×3)
// (4×4 patches, 2×2 outputs) and F(4×4, 3×3) (6×6, 4×4). kP = m + 2: the patch; kM = m.

// v (kP², k = kP·i + j) = Bᵀ d B of one patch: t = Bᵀ d (each column of d), then t B (each row
// of t: (t B)[i][·] = Bᵀ t[i][·]).
template <typename T, int kP>
MINIDL_HD void winograd_input_values(const T (&d)[kP][kP], T (&v)[kP * kP]) {
  T t[kP][kP];
  for (int j = 0; j < kP; ++j) {
    T column[kP], out[kP];
    for (int i = 0; i < kP; ++i) column[i] = d[i][j];
    winograd_bt(column, out);
    for (int i = 0; i < kP; ++i) t[i][j] = out[i];
  }
  for (int i = 0; i < kP; ++i) {
    T out[kP];
    winograd_bt(t[i], out);
    for (int j = 0; j < kP; ++j) v[kP * i + j] = out[j];
  }
}

// y (m×m) = Aᵀ m A of one tile's (m + 2)² products: t = Aᵀ m (each column), then t A (each row:
// Aᵀ t[i]).
template <typename T, int kM>
MINIDL_HD void winograd_output_values(const T (&m)[(kM + 2) * (kM + 2)], T (&y)[kM][kM]) {
  constexpr int kP = kM + 2;
  T t[kM][kP];
  for (int j = 0; j < kP; ++j) {
    T column[kP], out[kM];
    for (int i = 0; i < kP; ++i) column[i] = m[kP * i + j];
    winograd_at(column, out);
    for (int i = 0; i < kM; ++i) t[i][j] = out[i];
  }
  for (int i = 0; i < kM; ++i) winograd_at(t[i], y[i]);
}

// dm ((m + 2)²) = A dy Aᵀ: t = A dy (each column of dy), then t Aᵀ (each row: A t[i]).
template <typename T, int kM>
MINIDL_HD void winograd_output_adjoint_values(const T (&dy)[kM][kM], T (&dm)[(kM + 2) * (kM + 2)]) {
  constexpr int kP = kM + 2;
  T t[kP][kM];
  for (int b = 0; b < kM; ++b) {
    T column[kM], out[kP];
    for (int a = 0; a < kM; ++a) column[a] = dy[a][b];
    winograd_a(column, out);
    for (int i = 0; i < kP; ++i) t[i][b] = out[i];
  }
  for (int i = 0; i < kP; ++i) {
    T out[kP];
    winograd_a(t[i], out);
    for (int j = 0; j < kP; ++j) dm[kP * i + j] = out[j];
  }
}

// dd (kP×kP) = B dv Bᵀ of one tile's kP² gradients: u = dv Bᵀ (each row of dv: B dv[k]), then
// B u (each column of u).
template <typename T, int kP>
MINIDL_HD void winograd_input_adjoint_values(const T (&dv)[kP * kP], T (&dd)[kP][kP]) {
  T u[kP][kP];
  for (int k = 0; k < kP; ++k) {
    T row[kP];
    for (int l = 0; l < kP; ++l) row[l] = dv[kP * k + l];
    winograd_b(row, u[k]);
  }
  for (int s = 0; s < kP; ++s) {
    T column[kP], out[kP];
    for (int k = 0; k < kP; ++k) column[k] = u[k][s];
    winograd_b(column, out);
    for (int r = 0; r < kP; ++r) dd[r][s] = out[r];
  }
}

// The sizes of a tile of F(m×m, 3×3): its m×m outputs come from an (m + 2)² patch, kBlocks of them.
template <int kM>
struct WinogradTile {
  static constexpr int kPatch = kM + 2, kBlocks = kPatch * kPatch;
};

// One element of the input transform: the patch of tile (ty, tx) of image n, channel c (zeros
// outside the image), transformed, written to V[k · k_stride + c · P + p]. kM: the tile (2 or 4).
template <int kM, typename T>
MINIDL_HD void winograd_input_tile(const T* x, const WinogradGeometry& g, index_t n, index_t c,
                                   index_t ty, index_t tx, T* V) {
  constexpr int kPatch = WinogradTile<kM>::kPatch, kBlocks = WinogradTile<kM>::kBlocks;
  const T* plane = x + (n * g.channels + c) * g.height * g.width;
  const index_t y0 = kM * ty - g.pad_h, x0 = kM * tx - g.pad_w;
  T d[kPatch][kPatch];
  for (int i = 0; i < kPatch; ++i)
    for (int j = 0; j < kPatch; ++j) {
      const index_t yy = y0 + i, xx = x0 + j;
      d[i][j] = (yy >= 0 && yy < g.height && xx >= 0 && xx < g.width) ? plane[yy * g.width + xx]
                                                                      : T(0);
    }
  T v[kBlocks];
  winograd_input_values(d, v);
  const index_t p = (n * g.tiles_h + ty) * g.tiles_w + tx;
  for (int k = 0; k < kBlocks; ++k) V[k * g.k_stride + c * g.patches + p] = v[k];
}

// One element of the output transform: the m×m outputs of tile (ty, tx) of image n, filter f,
// from m[k] = M[k · k_stride + f · P + p]; the ones inside (out_h, out_w) are written to
// y (N, F, out_h, out_w), with bias[f] added (bias may be null).
template <int kM, typename T>
MINIDL_HD void winograd_output_tile(const T* M, const WinogradGeometry& g, index_t filters,
                                    index_t n, index_t f, index_t ty, index_t tx, const T* bias,
                                    T* y) {
  constexpr int kBlocks = WinogradTile<kM>::kBlocks;
  const index_t p = (n * g.tiles_h + ty) * g.tiles_w + tx;
  T m[kBlocks];
  for (int k = 0; k < kBlocks; ++k) m[k] = M[k * g.k_stride + f * g.patches + p];
  T out[kM][kM];
  winograd_output_values(m, out);
  T* plane = y + (n * filters + f) * g.out_h * g.out_w;
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kM; ++j) {
      const index_t yy = kM * ty + i, xx = kM * tx + j;
      if (yy < g.out_h && xx < g.out_w) plane[yy * g.out_w + xx] = bias ? out[i][j] + bias[f] : out[i][j];
    }
}

// ---- the backward: the adjoints of the two data transforms ------------------------------------
// y = Aᵀ m A is linear in m, so dL/dm = A dy Aᵀ (dy: the tile's m×m output gradients, 0 where the
// tile hangs over the edge); V = Bᵀ d B is linear in d, so dL/dd = B dV Bᵀ — and since the
// (m + 2)² patches overlap, an input pixel collects that from every tile whose patch holds it (up
// to 2×2). The two adjoints' arithmetic: winograd_output_adjoint_values, _input_adjoint_values.
// The weight's gradient needs no kernel: dU[k] = dM[k] @ V[k]ᵀ and dW = Gᵀ dU G (a GEMM with G ⊗ G).

// One element of the output transform's adjoint: tile (ty, tx) of image n, filter f, from dy
// (N, F, out_h, out_w) into dM[k · k_stride + f · P + p].
template <int kM, typename T>
MINIDL_HD void winograd_output_adjoint_tile(const T* dy, const WinogradGeometry& g, index_t filters,
                                            index_t n, index_t f, index_t ty, index_t tx, T* dM) {
  constexpr int kBlocks = WinogradTile<kM>::kBlocks;
  const T* plane = dy + (n * filters + f) * g.out_h * g.out_w;
  T d[kM][kM];
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kM; ++j) {
      const index_t yy = kM * ty + i, xx = kM * tx + j;
      d[i][j] = (yy < g.out_h && xx < g.out_w) ? plane[yy * g.out_w + xx] : T(0);
    }
  T dm[kBlocks];
  winograd_output_adjoint_values(d, dm);
  const index_t p = (n * g.tiles_h + ty) * g.tiles_w + tx;
  for (int k = 0; k < kBlocks; ++k) dM[k * g.k_stride + f * g.patches + p] = dm[k];
}

// One element of the input transform's adjoint: dx of pixel (yy, xx) of image n, channel c — the
// sum over the tiles whose (m + 2)² patch holds it (tile rows first, then columns) of that patch's
// (B dV Bᵀ) entry. A gather, as col2im_pixel: no two pixels write the same address.
template <int kM, typename T>
MINIDL_HD T winograd_input_adjoint_pixel(const T* dV, const WinogradGeometry& g, index_t n,
                                         index_t c, index_t yy, index_t xx) {
  constexpr int kPatch = WinogradTile<kM>::kPatch, kBlocks = WinogradTile<kM>::kBlocks;
  const index_t py = yy + g.pad_h, px = xx + g.pad_w;  // in padded coordinates
  // tile t's patch covers padded rows m·t … m·t + m + 1: the tiles from ceil((py − m − 1) / m)
  const index_t ty0 = py >= kPatch - 1 ? (py - 2) / kM : 0, ty1 = py / kM < g.tiles_h - 1 ? py / kM : g.tiles_h - 1;
  const index_t tx0 = px >= kPatch - 1 ? (px - 2) / kM : 0, tx1 = px / kM < g.tiles_w - 1 ? px / kM : g.tiles_w - 1;
  T sum = T(0);
  for (index_t ty = ty0; ty <= ty1; ++ty)
    for (index_t tx = tx0; tx <= tx1; ++tx) {
      const T* tile = dV + c * g.patches + (n * g.tiles_h + ty) * g.tiles_w + tx;
      T dv[kBlocks], dd[kPatch][kPatch];
      for (int k = 0; k < kBlocks; ++k) dv[k] = tile[k * g.k_stride];
      winograd_input_adjoint_values(dv, dd);  // all entries, one used: the textbook form
      sum += dd[py - kM * ty][px - kM * tx];
    }
  return sum;
}

}  // namespace minidl
