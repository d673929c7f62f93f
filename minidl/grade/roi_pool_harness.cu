// roi_pool_harness.cu — the CUDA launcher around a *student's* RoI-pool body.
//
// The GPU half of the C++ assignment part: minidl.grade.kernel.build_kernel compiles this file
// with nvcc (when there is one) only to prove that the student's body, marked MINIDL_HD
// (= __host__ __device__ under nvcc), also compiles as device code. It is not run. The kernel
// mirrors csrc/roi_pool/roi_pool_cuda.cu: one thread per output cell (k, c, ph, pw), each
// computing its RoI's geometry and calling the same `student::roi_pool_cell` that the OpenMP
// loop of roi_pool_harness.cpp calls on the CPU.
#include <cstdint>

#include "common/host_device.h"
#include "common/roi_common.h"
#include "roi_pool/roi_pool.h"  // only for roi_pool_geometry / RoiPoolGeometry (given)

// The stub's placeholder (see roi_pool_harness.cpp).
#define MINIDL_TODO(function) \
  static_assert(sizeof(T) == 0, function ": replace the TODO with your code")
#include "roi_pool_cell.h"  // the student's body

using minidl::index_t;

template <typename T>
__global__ void student_roi_pool_forward_kernel(const T* input, index_t batch, index_t channels,
                                                index_t height, index_t width, const T* rois,
                                                index_t num_rois, T scale, index_t pooled_h,
                                                index_t pooled_w, T* output, index_t* argmax) {
  const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= num_rois * channels * pooled_h * pooled_w) return;
  // index = ((k * channels + c) * pooled_h + ph) * pooled_w + pw: unpack it.
  const index_t pw = index % pooled_w, ph = index / pooled_w % pooled_h;
  const index_t c = index / (pooled_w * pooled_h) % channels;
  const index_t k = index / (pooled_w * pooled_h * channels);
  const minidl::RoiPoolGeometry<T> g =
      minidl::roi_pool_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w);
  const T* plane = input + ((g.valid ? g.batch : 0) * channels + c) * height * width;
  student::roi_pool_cell<T>(plane, height, width, g, ph, pw, output + index, argmax + index);
}

// Host launcher on device pointers (what a binding would call), one per dtype: instantiating
// it makes nvcc emit the kernel's device code for both float and double.
template <typename T>
void student_roi_pool_forward_cuda(const T* input, index_t batch, index_t channels,
                                   index_t height, index_t width, const T* rois, index_t num_rois,
                                   double spatial_scale, index_t pooled_h, index_t pooled_w,
                                   T* output, index_t* argmax, cudaStream_t stream) {
  const index_t total = num_rois * channels * pooled_h * pooled_w;
  if (total == 0) return;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  student_roi_pool_forward_kernel<T><<<blocks, threads, 0, stream>>>(
      input, batch, channels, height, width, rois, num_rois, static_cast<T>(spatial_scale),
      pooled_h, pooled_w, output, argmax);
}

template void student_roi_pool_forward_cuda<float>(const float*, index_t, index_t, index_t,
                                                   index_t, const float*, index_t, double,
                                                   index_t, index_t, float*, index_t*,
                                                   cudaStream_t);
template void student_roi_pool_forward_cuda<double>(const double*, index_t, index_t, index_t,
                                                    index_t, const double*, index_t, double,
                                                    index_t, index_t, double*, index_t*,
                                                    cudaStream_t);
