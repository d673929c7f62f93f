// winograd_cuda.cu — Winograd F(2×2, 3×3)'s and F(4×4, 3×3)'s data transforms on the GPU: one
// thread per tile, each calling the per-tile body of winograd.h (the code the CPU's OpenMP loops
// run); kM, the tile, a template argument (2 or 4). nvcc may fuse F(4×4, 3×3)'s multiply-adds, so
// those results match the CPU's to rounding, F(2×2, 3×3)'s (additions only) bit for bit.
#include "../common/cuda_check.h"
#include "winograd.h"
#include "winograd_cuda.h"

namespace minidl {


template <int kM, typename T>
__global__ void winograd_input_kernel(const T* x, WinogradGeometry g, T* V) {
  const index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t tiles = g.tiles_h * g.tiles_w;
  if (t >= g.batch * g.channels * tiles) return;
  const index_t tx = t % g.tiles_w, ty = t / g.tiles_w % g.tiles_h;
  const index_t c = t / tiles % g.channels, n = t / (tiles * g.channels);
  winograd_input_tile<kM>(x, g, n, c, ty, tx, V);
}

template <int kM, typename T>
__global__ void winograd_output_kernel(const T* M, WinogradGeometry g, index_t filters,
                                       const T* bias, T* y) {
  const index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t tiles = g.tiles_h * g.tiles_w;
  if (t >= g.batch * filters * tiles) return;
  const index_t tx = t % g.tiles_w, ty = t / g.tiles_w % g.tiles_h;
  const index_t f = t / tiles % filters, n = t / (tiles * filters);
  winograd_output_tile<kM>(M, g, filters, n, f, ty, tx, bias, y);
}

template <int kM, typename T>
__global__ void winograd_output_adjoint_kernel(const T* dy, WinogradGeometry g, index_t filters, T* dM) {
  const index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t tiles = g.tiles_h * g.tiles_w;
  if (t >= g.batch * filters * tiles) return;
  const index_t tx = t % g.tiles_w, ty = t / g.tiles_w % g.tiles_h;
  const index_t f = t / tiles % filters, n = t / (tiles * filters);
  winograd_output_adjoint_tile<kM>(dy, g, filters, n, f, ty, tx, dM);
}

template <int kM, typename T>
__global__ void winograd_input_adjoint_kernel(const T* dV, WinogradGeometry g, T* dx) {
  const index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t plane = g.height * g.width;
  if (t >= g.batch * g.channels * plane) return;
  const index_t x = t % g.width, y = t / g.width % g.height;
  const index_t c = t / plane % g.channels, n = t / (plane * g.channels);
  dx[t] = winograd_input_adjoint_pixel<kM>(dV, g, n, c, y, x);
}

void winograd_output_adjoint_cuda(std::uintptr_t dy, std::uintptr_t dM, std::int64_t batch,
                                  std::int64_t filters, std::int64_t out_h, std::int64_t out_w,
                                  std::int64_t tile, int dtype_code, std::uintptr_t stream) {
  const WinogradGeometry g = make_winograd_output_geometry(batch, filters, out_h, out_w, tile);
  const index_t threads = batch * filters * g.tiles_h * g.tiles_w;
  if (threads == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const auto float_kernel = g.tile == 4 ? winograd_output_adjoint_kernel<4, float>
                                        : winograd_output_adjoint_kernel<2, float>;
  const auto double_kernel = g.tile == 4 ? winograd_output_adjoint_kernel<4, double>
                                         : winograd_output_adjoint_kernel<2, double>;
  if (dtype_code == 0)
    float_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(dy), g, filters, reinterpret_cast<float*>(dM));
  else
    double_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(dy), g, filters, reinterpret_cast<double*>(dM));
  cuda_check(cudaGetLastError(), "winograd_output_adjoint");
}

void winograd_input_adjoint_cuda(std::uintptr_t dV, std::uintptr_t dx, std::int64_t batch,
                                 std::int64_t channels, std::int64_t height, std::int64_t width,
                                 std::int64_t pad_h, std::int64_t pad_w, std::int64_t tile,
                                 int dtype_code, std::uintptr_t stream) {
  const WinogradGeometry g =
      make_winograd_geometry(batch, channels, height, width, pad_h, pad_w, tile);
  const index_t threads = batch * channels * height * width;
  if (threads == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const auto float_kernel = g.tile == 4 ? winograd_input_adjoint_kernel<4, float>
                                        : winograd_input_adjoint_kernel<2, float>;
  const auto double_kernel = g.tile == 4 ? winograd_input_adjoint_kernel<4, double>
                                         : winograd_input_adjoint_kernel<2, double>;
  if (dtype_code == 0)
    float_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(dV), g, reinterpret_cast<float*>(dx));
  else
    double_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(dV), g, reinterpret_cast<double*>(dx));
  cuda_check(cudaGetLastError(), "winograd_input_adjoint");
}

void winograd_input_transform_cuda(std::uintptr_t x, std::uintptr_t V, std::int64_t batch,
                                   std::int64_t channels, std::int64_t height, std::int64_t width,
                                   std::int64_t pad_h, std::int64_t pad_w, std::int64_t tile,
                                   int dtype_code, std::uintptr_t stream) {
  const WinogradGeometry g =
      make_winograd_geometry(batch, channels, height, width, pad_h, pad_w, tile);
  const index_t threads = batch * channels * g.tiles_h * g.tiles_w;
  if (threads == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const auto float_kernel = g.tile == 4 ? winograd_input_kernel<4, float>
                                        : winograd_input_kernel<2, float>;
  const auto double_kernel = g.tile == 4 ? winograd_input_kernel<4, double>
                                         : winograd_input_kernel<2, double>;
  if (dtype_code == 0)
    float_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(x), g, reinterpret_cast<float*>(V));
  else
    double_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(x), g, reinterpret_cast<double*>(V));
  cuda_check(cudaGetLastError(), "winograd_input_transform");
}

void winograd_output_transform_cuda(std::uintptr_t M, std::uintptr_t bias, std::uintptr_t y,
                                    std::int64_t batch, std::int64_t filters, std::int64_t out_h,
                                    std::int64_t out_w, std::int64_t tile, int dtype_code,
                                    std::uintptr_t stream) {
  const WinogradGeometry g = make_winograd_output_geometry(batch, filters, out_h, out_w, tile);
  const index_t threads = batch * filters * g.tiles_h * g.tiles_w;
  if (threads == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const auto float_kernel = g.tile == 4 ? winograd_output_kernel<4, float>
                                        : winograd_output_kernel<2, float>;
  const auto double_kernel = g.tile == 4 ? winograd_output_kernel<4, double>
                                         : winograd_output_kernel<2, double>;
  if (dtype_code == 0)
    float_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(M), g, filters, reinterpret_cast<const float*>(bias),
        reinterpret_cast<float*>(y));
  else
    double_kernel<<<blocks_for(threads), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(M), g, filters, reinterpret_cast<const double*>(bias),
        reinterpret_cast<double*>(y));
  cuda_check(cudaGetLastError(), "winograd_output_transform");
}

}  // namespace minidl
