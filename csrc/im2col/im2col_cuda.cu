// im2col_cuda.cu — one CUDA thread per element, each calling the shared bodies (im2col.h).
//
// im2col: one thread per column entry (consecutive threads write consecutive addresses).
// col2im: one thread per input pixel, gathering its taps — no atomics, deterministic.
#include "../common/cuda_check.h"
#include "im2col.h"
#include "im2col_cuda.h"

namespace minidl {

template <typename T>
__global__ void im2col_kernel(const T* x, ConvGeometry g, T* cols, index_t total) {
  const index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  // e = row * (N * out_h * out_w) + col; unpack row = (c, i, j) and col = (n, oy, ox).
  const index_t plane = g.out_h * g.out_w, row_length = g.batch * plane;
  const index_t row = e / row_length, col = e % row_length;
  const index_t taps = g.kernel_h * g.kernel_w;
  const index_t c = row / taps, i = (row % taps) / g.kernel_w, j = row % g.kernel_w;
  const index_t n = col / plane, oy = (col % plane) / g.out_w, ox = col % g.out_w;
  cols[row * g.col_stride + col] = im2col_element(x, g, n, c, i, j, oy, ox);
}

template <typename T, int kStride>
__global__ void col2im_kernel(const T* cols, ConvGeometry g, T* x, index_t total) {
  const index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  // e = ((n * C + c) * H + y) * W + x: the pixel this thread owns.
  const index_t xx = e % g.width, y = (e / g.width) % g.height;
  const index_t c = (e / (g.width * g.height)) % g.channels;
  const index_t n = e / (g.width * g.height * g.channels);
  x[e] = col2im_pixel<T, kStride>(cols, g, n, c, y, xx);
}

// Launch col2im_kernel with the stride compiled in when it is 1 or 2 (see first_tap).
template <typename T>
static void launch_col2im(const T* cols, const ConvGeometry& g, T* x, index_t total,
                          cudaStream_t s) {
  if (g.stride_h == 1 && g.stride_w == 1)
    col2im_kernel<T, 1><<<blocks_for(total), kThreads, 0, s>>>(cols, g, x, total);
  else if (g.stride_h == 2 && g.stride_w == 2)
    col2im_kernel<T, 2><<<blocks_for(total), kThreads, 0, s>>>(cols, g, x, total);
  else
    col2im_kernel<T, 0><<<blocks_for(total), kThreads, 0, s>>>(cols, g, x, total);
}

void im2col_cuda(std::uintptr_t x, std::uintptr_t cols, std::int64_t batch, std::int64_t channels,
                 std::int64_t height, std::int64_t width, std::int64_t kernel_h,
                 std::int64_t kernel_w, std::int64_t stride_h, std::int64_t stride_w,
                 std::int64_t pad_h, std::int64_t pad_w, std::int64_t dilation_h,
                 std::int64_t dilation_w, int dtype_code, std::uintptr_t stream) {
  const ConvGeometry g = make_conv_geometry(batch, channels, height, width, kernel_h, kernel_w,
                                            stride_h, stride_w, pad_h, pad_w, dilation_h,
                                            dilation_w);
  const index_t total = channels * kernel_h * kernel_w * batch * g.out_h * g.out_w;
  if (total <= 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    im2col_kernel<float><<<blocks_for(total), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(x), g, reinterpret_cast<float*>(cols), total);
  else
    im2col_kernel<double><<<blocks_for(total), kThreads, 0, s>>>(
        reinterpret_cast<const double*>(x), g, reinterpret_cast<double*>(cols), total);
  cuda_check(cudaGetLastError(), "im2col");
}

void col2im_cuda(std::uintptr_t cols, std::uintptr_t x, std::int64_t batch, std::int64_t channels,
                 std::int64_t height, std::int64_t width, std::int64_t kernel_h,
                 std::int64_t kernel_w, std::int64_t stride_h, std::int64_t stride_w,
                 std::int64_t pad_h, std::int64_t pad_w, std::int64_t dilation_h,
                 std::int64_t dilation_w, int dtype_code, std::uintptr_t stream) {
  const ConvGeometry g = make_conv_geometry(batch, channels, height, width, kernel_h, kernel_w,
                                            stride_h, stride_w, pad_h, pad_w, dilation_h,
                                            dilation_w);
  const index_t total = batch * channels * height * width;
  if (total <= 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    launch_col2im(reinterpret_cast<const float*>(cols), g, reinterpret_cast<float*>(x), total, s);
  else
    launch_col2im(reinterpret_cast<const double*>(cols), g, reinterpret_cast<double*>(x), total,
                  s);
  cuda_check(cudaGetLastError(), "col2im");
}

}  // namespace minidl
