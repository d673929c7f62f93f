// host_device.h — one macro lets a function be compiled for the CPU and the GPU.
//
// Under nvcc, MINIDL_HD marks a function __host__ __device__: the CUDA kernel calls it on the
// GPU and the OpenMP loop calls the very same code on the CPU. Under g++ it is plain `inline`.
// So the CPU tests exercise the per-element body that the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define MINIDL_HD __host__ __device__ __forceinline__
#else
#define MINIDL_HD inline
#endif

#include <cstdint>

namespace minidl {
using index_t = std::int64_t;  // sizes and offsets: 64-bit, so large tensors never overflow
}  // namespace minidl
