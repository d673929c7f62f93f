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
// A grid has at most 2^31 - 1 blocks along x, so one launch covers at most kMaxLaunchElements
// elements; bind_cuda.cpp checks that before it calls a launcher (a larger n would wrap the
// unsigned block count below and leave most elements unvisited).
constexpr int kThreads = 256;
constexpr long long kMaxGridBlocks = 2147483647LL;
constexpr long long kMaxLaunchElements = kMaxGridBlocks * kThreads;
inline unsigned int blocks_for(long long n) {
  return static_cast<unsigned int>((n + kThreads - 1) / kThreads);
}
}  // namespace minidl
