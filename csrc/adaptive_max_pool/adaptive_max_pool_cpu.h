// adaptive_max_pool_cpu.h — the CPU launchers' declarations (see adaptive_max_pool.h).
#pragma once
#include "../common/host_device.h"

namespace minidl {
// input (batch, channels, height, width) -> output and argmax, both (batch, channels, out_h,
// out_w); argmax = flat index into the input's height×width plane.
template <typename T>
void adaptive_max_pool2d_forward_cpu(const T* input, index_t batch, index_t channels,
                                     index_t height, index_t width, index_t out_h, index_t out_w,
                                     T* output, index_t* argmax);

// The fast form of the forward (adaptive_max_pool_cpu_fast.cpp): the same cells, bit for bit.
template <typename T>
void adaptive_max_pool2d_forward_cpu_fast(const T* input, index_t batch, index_t channels,
                                          index_t height, index_t width, index_t out_h,
                                          index_t out_w, T* output, index_t* argmax);

// grad_input (batch, channels, height, width), zero on entry, receives every cell's gradient at
// its argmax. Deterministic: one thread owns each plane and adds its cells in order.
template <typename T>
void adaptive_max_pool2d_backward_cpu(const T* grad_output, const index_t* argmax, index_t batch,
                                      index_t channels, index_t height, index_t width,
                                      index_t out_h, index_t out_w, T* grad_input);
}  // namespace minidl
