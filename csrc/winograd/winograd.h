// winograd.h — the per-tile bodies of Winograd's F(2×2, 3×3) convolution, shared by the CPU and
// CUDA launchers.
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
#pragma once

#include "../common/host_device.h"

namespace minidl {

struct WinogradGeometry {
  index_t batch, channels, height, width;  // the input (N, C, H, W)
  index_t pad_h, pad_w;
  index_t out_h, out_w;                    // H + 2·pad − 2 (a 3×3 kernel, stride 1)
  index_t tiles_h, tiles_w;                // ceil(out / 2): the last tile may hang over the edge
  index_t patches;                         // P = N · tiles_h · tiles_w
  // Elements from one k to the next in V (input transform) or M (output transform): C·P (or
  // F·P) when contiguous, more when padded — the CPU pads it off a multiple of 4 KB, or the 16
  // streams a tile reads or writes would all land in the same cache sets (as im2col's rows).
  index_t k_stride;
};

inline WinogradGeometry make_winograd_geometry(index_t batch, index_t channels, index_t height,
                                               index_t width, index_t pad_h, index_t pad_w) {
  WinogradGeometry g{batch, channels, height, width, pad_h, pad_w, 0, 0, 0, 0, 0, 0};
  g.out_h = height + 2 * pad_h - 2;
  g.out_w = width + 2 * pad_w - 2;
  g.tiles_h = (g.out_h + 1) / 2;
  g.tiles_w = (g.out_w + 1) / 2;
  g.patches = batch * g.tiles_h * g.tiles_w;
  g.k_stride = channels * g.patches;  // contiguous V; a launcher may set a padded one
  return g;
}

// The geometry the output transform needs, from the output's shape (N, F, out_h, out_w).
inline WinogradGeometry make_winograd_output_geometry(index_t batch, index_t filters,
                                                      index_t out_h, index_t out_w) {
  WinogradGeometry g = make_winograd_geometry(batch, 0, out_h + 2, out_w + 2, 0, 0);
  g.k_stride = filters * g.patches;   // contiguous M
  return g;
}

// The arithmetic of the input transform: v (16, k = 4·i + j) = Bᵀ d B of one 4×4 patch d.
// Rows first, t = Bᵀ d (the rows of Bᵀ written out), then t B (the columns).
template <typename T>
MINIDL_HD void winograd_input_values(const T (&d)[4][4], T (&v)[16]) {
  T t[4][4];
  for (int j = 0; j < 4; ++j) {
    t[0][j] = d[0][j] - d[2][j];
    t[1][j] = d[1][j] + d[2][j];
    t[2][j] = d[2][j] - d[1][j];
    t[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < 4; ++i) {
    v[4 * i + 0] = t[i][0] - t[i][2];
    v[4 * i + 1] = t[i][1] + t[i][2];
    v[4 * i + 2] = t[i][2] - t[i][1];
    v[4 * i + 3] = t[i][1] - t[i][3];
  }
}

// The arithmetic of the output transform: y (2×2) = Aᵀ m A of one tile's 16 products m.
template <typename T>
MINIDL_HD void winograd_output_values(const T (&m)[16], T (&y)[2][2]) {
  T t[2][4];  // t = Aᵀ m
  for (int j = 0; j < 4; ++j) {
    t[0][j] = m[j] + m[4 + j] + m[8 + j];
    t[1][j] = m[4 + j] - m[8 + j] - m[12 + j];
  }
  for (int i = 0; i < 2; ++i) {
    y[i][0] = t[i][0] + t[i][1] + t[i][2];
    y[i][1] = t[i][1] - t[i][2] - t[i][3];
  }
}

// One element of the input transform: the patch of tile (ty, tx) of image n, channel c (zeros
// outside the image), transformed, written to V[k · k_stride + c · P + p].
template <typename T>
MINIDL_HD void winograd_input_tile(const T* x, const WinogradGeometry& g, index_t n, index_t c,
                                   index_t ty, index_t tx, T* V) {
  const T* plane = x + (n * g.channels + c) * g.height * g.width;
  const index_t y0 = 2 * ty - g.pad_h, x0 = 2 * tx - g.pad_w;
  T d[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const index_t yy = y0 + i, xx = x0 + j;
      d[i][j] = (yy >= 0 && yy < g.height && xx >= 0 && xx < g.width) ? plane[yy * g.width + xx]
                                                                      : T(0);
    }
  T v[16];
  winograd_input_values(d, v);
  const index_t p = (n * g.tiles_h + ty) * g.tiles_w + tx;
  for (int k = 0; k < 16; ++k) V[k * g.k_stride + c * g.patches + p] = v[k];
}

// One element of the output transform: the 2×2 outputs of tile (ty, tx) of image n, filter f,
// from m[k] = M[k · k_stride + f · P + p]; the ones inside (out_h, out_w) are written to
// y (N, F, out_h, out_w), with bias[f] added (bias may be null).
template <typename T>
MINIDL_HD void winograd_output_tile(const T* M, const WinogradGeometry& g, index_t filters,
                                    index_t n, index_t f, index_t ty, index_t tx, const T* bias,
                                    T* y) {
  const index_t p = (n * g.tiles_h + ty) * g.tiles_w + tx;
  T m[16];
  for (int k = 0; k < 16; ++k) m[k] = M[k * g.k_stride + f * g.patches + p];
  T out[2][2];
  winograd_output_values(m, out);
  T* plane = y + (n * filters + f) * g.out_h * g.out_w;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      const index_t yy = 2 * ty + i, xx = 2 * tx + j;
      if (yy < g.out_h && xx < g.out_w) plane[yy * g.out_w + xx] = bias ? out[i][j] + bias[f] : out[i][j];
    }
}

// ---- the backward: the adjoints of the two data transforms ------------------------------------
// y = Aᵀ m A is linear in m, so dL/dm = A dy Aᵀ (dy: the tile's 2×2 output gradients, 0 where the
// tile hangs over the edge); V = Bᵀ d B is linear in d, so dL/dd = B dV Bᵀ — and since the 4×4
// patches overlap, an input pixel collects that from every tile whose patch holds it (up to 2×2).
// The weight's gradient needs no kernel: dU[k] = dM[k] @ V[k]ᵀ and dW = Gᵀ dU G (a GEMM with G ⊗ G).

// dm (16) = A dy Aᵀ: rows first, t = A dy (the rows of A are (1 0), (1 1), (1 −1), (0 −1)).
template <typename T>
MINIDL_HD void winograd_output_adjoint_values(const T (&dy)[2][2], T (&dm)[16]) {
  T t[4][2];
  for (int b = 0; b < 2; ++b) {
    t[0][b] = dy[0][b];
    t[1][b] = dy[0][b] + dy[1][b];
    t[2][b] = dy[0][b] - dy[1][b];
    t[3][b] = -dy[1][b];
  }
  for (int i = 0; i < 4; ++i) {
    dm[4 * i + 0] = t[i][0];
    dm[4 * i + 1] = t[i][0] + t[i][1];
    dm[4 * i + 2] = t[i][0] - t[i][1];
    dm[4 * i + 3] = -t[i][1];
  }
}

// One element of the output transform's adjoint: tile (ty, tx) of image n, filter f, from dy
// (N, F, out_h, out_w) into dM[k · k_stride + f · P + p].
template <typename T>
MINIDL_HD void winograd_output_adjoint_tile(const T* dy, const WinogradGeometry& g, index_t filters,
                                            index_t n, index_t f, index_t ty, index_t tx, T* dM) {
  const T* plane = dy + (n * filters + f) * g.out_h * g.out_w;
  T d[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      const index_t yy = 2 * ty + i, xx = 2 * tx + j;
      d[i][j] = (yy < g.out_h && xx < g.out_w) ? plane[yy * g.out_w + xx] : T(0);
    }
  T dm[16];
  winograd_output_adjoint_values(d, dm);
  const index_t p = (n * g.tiles_h + ty) * g.tiles_w + tx;
  for (int k = 0; k < 16; ++k) dM[k * g.k_stride + f * g.patches + p] = dm[k];
}

// dd (4×4) = B dv Bᵀ of one tile's 16 gradients dv (k = 4·i + j): first u = dv B (each row of dv
// times the columns of Bᵀ: (1 0 0 0), (0 1 −1 1), (−1 1 1 0), (0 0 0 −1)), then B u.
template <typename T>
MINIDL_HD void winograd_input_adjoint_values(const T (&dv)[16], T (&dd)[4][4]) {
  T u[4][4];
  for (int k = 0; k < 4; ++k) {
    const T* v = dv + 4 * k;
    u[k][0] = v[0];
    u[k][1] = v[1] - v[2] + v[3];
    u[k][2] = -v[0] + v[1] + v[2];
    u[k][3] = -v[3];
  }
  for (int s = 0; s < 4; ++s) {
    dd[0][s] = u[0][s];
    dd[1][s] = u[1][s] - u[2][s] + u[3][s];
    dd[2][s] = -u[0][s] + u[1][s] + u[2][s];
    dd[3][s] = -u[3][s];
  }
}

// One element of the input transform's adjoint: dx of pixel (yy, xx) of image n, channel c — the
// sum over the tiles whose 4×4 patch holds it (tile rows first, then columns) of that patch's
// (B dV Bᵀ) entry. A gather, as col2im_pixel: no two pixels write the same address.
template <typename T>
MINIDL_HD T winograd_input_adjoint_pixel(const T* dV, const WinogradGeometry& g, index_t n,
                                         index_t c, index_t yy, index_t xx) {
  const index_t py = yy + g.pad_h, px = xx + g.pad_w;  // in padded coordinates
  const index_t ty0 = py >= 2 ? (py - 2) / 2 : 0, ty1 = py / 2 < g.tiles_h - 1 ? py / 2 : g.tiles_h - 1;
  const index_t tx0 = px >= 2 ? (px - 2) / 2 : 0, tx1 = px / 2 < g.tiles_w - 1 ? px / 2 : g.tiles_w - 1;
  T sum = T(0);
  for (index_t ty = ty0; ty <= ty1; ++ty)
    for (index_t tx = tx0; tx <= tx1; ++tx) {
      const T* tile = dV + c * g.patches + (n * g.tiles_h + ty) * g.tiles_w + tx;
      T dv[16], dd[4][4];
      for (int k = 0; k < 16; ++k) dv[k] = tile[k * g.k_stride];
      winograd_input_adjoint_values(dv, dd);  // all 16 entries, one used: the textbook form
      sum += dd[py - 2 * ty][px - 2 * tx];
    }
  return sum;
}

}  // namespace minidl
