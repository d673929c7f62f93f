// relu.h — the per-element bodies of ReLU, shared by the CPU and CUDA launchers
// (minidl/functional/activation.py; NumPy reference in minidl/kernels/relu.py).
//
//   forward    out = max(x, 0)
//   backward   grad_input = grad_output * (out > 0)   the gradient passes where the unit was on
//
// Both are written to give the reference's values bit for bit, special values included:
//   - max is written `x <= 0 ? 0 : x`: -0.0 becomes +0.0 and NaN stays NaN, as np.maximum(x, 0);
//   - the backward multiplies by 0 or 1 instead of selecting: an inf or NaN gradient reaching a
//     unit that was off gives NaN, as the reference's product does (PyTorch would give 0).
#pragma once

#include "../common/host_device.h"

namespace minidl {

template <typename T>
MINIDL_HD T relu_forward_element(T x) {
  return x <= T(0) ? T(0) : x;
}

template <typename T>
MINIDL_HD T relu_backward_element(T grad_output, T output) {
  return grad_output * (output > T(0) ? T(1) : T(0));
}

}  // namespace minidl
