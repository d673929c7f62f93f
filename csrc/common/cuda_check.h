// cuda_check.h — turn a CUDA error into a C++ exception (pybind11 makes it a RuntimeError).
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace minidl {
inline void cuda_check(cudaError_t status, const char* kernel) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("minidl CUDA kernel ") + kernel + " failed: " +
                             cudaGetErrorString(status) +
                             (status == cudaErrorInsufficientDriver || status == cudaErrorNoDevice
                                  ? " (no usable GPU on this machine)"
                                  : ""));
}

// Threads per block for the one-thread-per-element kernels, and the grid that covers n.
constexpr int kThreads = 256;
inline unsigned int blocks_for(long long n) {
  return static_cast<unsigned int>((n + kThreads - 1) / kThreads);
}
}  // namespace minidl
