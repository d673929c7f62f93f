// relu_cpu.cpp — ReLU's CPU launchers: one loop over the flat array, calling relu.h's bodies.
//
// Why a kernel for max(x, 0): NumPy's maximum(x, 0) takes ~4x the time of a copy of x (it
// checks for NaN value by value; measured in docs/performance.md), and the backward's
// grad * (out > 0) is two passes and a temporary array of booleans. Here each direction is one
// pass, vectorized at the widest width the CPU has (common/vector_clones.h). Threads only for
// large arrays, for the reason given at kParallelElements in im2col/im2col_cpu.h. (The `if`
// names `parallel`: an unnamed `if` of `parallel for simd` also switches off the vectorization,
// and the small arrays ran one value at a time, 10-50x slower.)
#include "relu_cpu.h"

#include "../common/vector_clones.h"

namespace minidl {

constexpr index_t kParallelElements = index_t(1) << 22;

template <typename T>
MINIDL_VECTOR_CLONES void relu_forward_cpu(const T* x, index_t count, T* out) {
#pragma omp parallel for simd schedule(static) if (parallel : count >= kParallelElements)
  for (index_t i = 0; i < count; ++i) out[i] = relu_forward_element(x[i]);
}

template <typename T>
MINIDL_VECTOR_CLONES void relu_backward_cpu(const T* grad_output, const T* output, index_t count,
                                            T* grad_input) {
#pragma omp parallel for simd schedule(static) if (parallel : count >= kParallelElements)
  for (index_t i = 0; i < count; ++i)
    grad_input[i] = relu_backward_element(grad_output[i], output[i]);
}

#define MINIDL_RELU_INSTANTIATE(T)                                         \
  template void relu_forward_cpu<T>(const T*, index_t, T*);                \
  template void relu_backward_cpu<T>(const T*, const T*, index_t, T*);
MINIDL_RELU_INSTANTIATE(float)
MINIDL_RELU_INSTANTIATE(double)
#undef MINIDL_RELU_INSTANTIATE
}  // namespace minidl
