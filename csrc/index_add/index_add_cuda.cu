// index_add_cuda.cu — one CUDA thread per column, each calling the shared body (index_add.h).
#include "../common/cuda_check.h"
#include "index_add.h"
#include "index_add_cuda.h"

namespace minidl {

template <typename T>
__global__ void index_add_kernel(const index_t* index, index_t n, const T* src, T* out,
                                 index_t rows, index_t inner) {
  const index_t j = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < inner) index_add_column(index, n, src, out, rows, inner, j);
}

void index_add_cuda(std::uintptr_t index, std::int64_t n, std::uintptr_t src, std::uintptr_t out,
                    std::int64_t rows, std::int64_t inner, int dtype_code, std::uintptr_t stream) {
  if (inner == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  auto idx = reinterpret_cast<const index_t*>(index);
  if (dtype_code == 0)
    index_add_kernel<float><<<blocks_for(inner), kThreads, 0, s>>>(
        idx, n, reinterpret_cast<const float*>(src), reinterpret_cast<float*>(out), rows, inner);
  else
    index_add_kernel<double><<<blocks_for(inner), kThreads, 0, s>>>(
        idx, n, reinterpret_cast<const double*>(src), reinterpret_cast<double*>(out), rows, inner);
  cuda_check(cudaGetLastError(), "index_add");
}

}  // namespace minidl
