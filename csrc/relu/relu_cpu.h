// relu_cpu.h — the CPU launchers' declarations (see relu.h for what they compute).
#pragma once
#include "relu.h"

namespace minidl {
// x, out: `count` contiguous values.
template <typename T>
void relu_forward_cpu(const T* x, index_t count, T* out);
// grad_output, output (the forward's out), grad_input: `count` contiguous values.
template <typename T>
void relu_backward_cpu(const T* grad_output, const T* output, index_t count, T* grad_input);
}  // namespace minidl
