// winograd_cpu.cpp — Winograd F(2×2, 3×3)'s and F(4×4, 3×3)'s data transforms on the CPU: OpenMP
// loops calling the per-tile bodies of winograd.h, the code the CUDA kernels run (one thread per
// tile there). Each launcher runs the bodies of the geometry's tile (g.tile: 2 or 4).
//
// One iteration owns one row of tiles of one (image, channel) plane — or (image, filter) plane
// for the output transform — so no two iterations write the same address. Threads only for
// large inputs, as in im2col (kParallelElements in im2col/im2col_cpu.h: these kernels run
// between OpenBLAS's GEMMs, whose threads are still spinning).
#include "winograd_cpu.h"

namespace minidl {

constexpr index_t kParallelTiles = index_t(1) << 18;  // 256K tiles: 16 MB of float32 V

namespace {

template <int kM, typename T>
void input_transform(const T* x, const WinogradGeometry& g, T* V) {
  const index_t rows = g.batch * g.channels * g.tiles_h;
#pragma omp parallel for schedule(static) if (rows * g.tiles_w >= kParallelTiles)
  for (index_t r = 0; r < rows; ++r) {
    const index_t ty = r % g.tiles_h, c = r / g.tiles_h % g.channels, n = r / (g.tiles_h * g.channels);
    for (index_t tx = 0; tx < g.tiles_w; ++tx) winograd_input_tile<kM>(x, g, n, c, ty, tx, V);
  }
}

template <int kM, typename T>
void output_transform(const T* M, const WinogradGeometry& g, index_t filters, const T* bias, T* y) {
  const index_t rows = g.batch * filters * g.tiles_h;
#pragma omp parallel for schedule(static) if (rows * g.tiles_w >= kParallelTiles)
  for (index_t r = 0; r < rows; ++r) {
    const index_t ty = r % g.tiles_h, f = r / g.tiles_h % filters, n = r / (g.tiles_h * filters);
    for (index_t tx = 0; tx < g.tiles_w; ++tx) winograd_output_tile<kM>(M, g, filters, n, f, ty, tx, bias, y);
  }
}

template <int kM, typename T>
void output_adjoint(const T* dy, const WinogradGeometry& g, index_t filters, T* dM) {
  const index_t rows = g.batch * filters * g.tiles_h;
#pragma omp parallel for schedule(static) if (rows * g.tiles_w >= kParallelTiles)
  for (index_t r = 0; r < rows; ++r) {
    const index_t ty = r % g.tiles_h, f = r / g.tiles_h % filters, n = r / (g.tiles_h * filters);
    for (index_t tx = 0; tx < g.tiles_w; ++tx) winograd_output_adjoint_tile<kM>(dy, g, filters, n, f, ty, tx, dM);
  }
}

template <int kM, typename T>
void input_adjoint(const T* dV, const WinogradGeometry& g, T* dx) {
  const index_t rows = g.batch * g.channels * g.height;
#pragma omp parallel for schedule(static) if (rows * g.width >= 4 * kParallelTiles)
  for (index_t r = 0; r < rows; ++r) {
    const index_t y = r % g.height, c = r / g.height % g.channels, n = r / (g.height * g.channels);
    T* out = dx + r * g.width;
    for (index_t x = 0; x < g.width; ++x) out[x] = winograd_input_adjoint_pixel<kM>(dV, g, n, c, y, x);
  }
}

}  // namespace

template <typename T>
void winograd_input_transform_cpu(const T* x, const WinogradGeometry& g, T* V) {
  (g.tile == 4 ? input_transform<4, T> : input_transform<2, T>)(x, g, V);
}

template <typename T>
void winograd_output_transform_cpu(const T* M, const WinogradGeometry& g, index_t filters,
                                   const T* bias, T* y) {
  (g.tile == 4 ? output_transform<4, T> : output_transform<2, T>)(M, g, filters, bias, y);
}

template <typename T>
void winograd_output_adjoint_cpu(const T* dy, const WinogradGeometry& g, index_t filters, T* dM) {
  (g.tile == 4 ? output_adjoint<4, T> : output_adjoint<2, T>)(dy, g, filters, dM);
}

template <typename T>
void winograd_input_adjoint_cpu(const T* dV, const WinogradGeometry& g, T* dx) {
  (g.tile == 4 ? input_adjoint<4, T> : input_adjoint<2, T>)(dV, g, dx);
}

template void winograd_output_adjoint_cpu<float>(const float*, const WinogradGeometry&, index_t, float*);
template void winograd_output_adjoint_cpu<double>(const double*, const WinogradGeometry&, index_t,
                                                  double*);
template void winograd_input_adjoint_cpu<float>(const float*, const WinogradGeometry&, float*);
template void winograd_input_adjoint_cpu<double>(const double*, const WinogradGeometry&, double*);
template void winograd_input_transform_cpu<float>(const float*, const WinogradGeometry&, float*);
template void winograd_input_transform_cpu<double>(const double*, const WinogradGeometry&, double*);
template void winograd_output_transform_cpu<float>(const float*, const WinogradGeometry&, index_t,
                                                   const float*, float*);
template void winograd_output_transform_cpu<double>(const double*, const WinogradGeometry&, index_t,
                                                    const double*, double*);
}  // namespace minidl
