// norm.h — the per-element bodies of batch and instance normalization, shared by the CPU and
// CUDA launchers (minidl/functional/norm.py; NumPy reference in minidl/kernels/norm.py).
//
// x is (N, C, P) contiguous, P = H*W (1 for (N, C) inputs). Statistics are taken per *group*:
//   batch norm     C groups   — channel c over all (n, p): N runs of P contiguous values
//   instance norm  N*C groups — plane (n, c) over all p:    1 run of P contiguous values
// Forward:   y = (x - mean_g) * inv_std_g * gamma_c + beta_c,   inv_std = 1 / sqrt(var + eps)
// Backward with statistics taken from x (m values per group):
//   dx = gamma_c * inv_std_g * (dy - mean_g(dy) - x_hat * mean_g(dy * x_hat))
// and with fixed (running) statistics simply dx = gamma_c * inv_std_g * dy.
//
// A ReLU fused onto the output (minidl.nn.fuse_norm_relu): the forward writes max(y, 0) in the
// same pass, and the backward reads the gradient of y as dy gated by that output's sign — the
// ReLU's own bodies (relu.h), so the outputs equal normalization-then-ReLU bit for bit and the
// gradients up to the order of the per-group sums, with one whole-array pass fewer each way.
#pragma once

#include "../common/host_device.h"
#include "../relu/relu.h"

namespace minidl {

struct NormGeometry {
  index_t batch, channels, plane;  // N, C, P
  bool per_instance;               // instance norm (N*C groups) or batch norm (C groups)
};

MINIDL_HD index_t norm_groups(const NormGeometry& g) {
  return g.per_instance ? g.batch * g.channels : g.channels;
}
// The contiguous runs of P values one group is made of, and where run r starts in x.
MINIDL_HD index_t norm_runs(const NormGeometry& g) { return g.per_instance ? 1 : g.batch; }
MINIDL_HD index_t norm_run_start(const NormGeometry& g, index_t group, index_t r) {
  return g.per_instance ? group * g.plane : (r * g.channels + group) * g.plane;
}
// The group of flat element e of x, and the channel (index of gamma / beta) of a group.
MINIDL_HD index_t norm_group_of(const NormGeometry& g, index_t e) {
  const index_t plane_index = e / g.plane;  // n * C + c
  return g.per_instance ? plane_index : plane_index % g.channels;
}
MINIDL_HD index_t norm_channel_of_group(const NormGeometry& g, index_t group) {
  return g.per_instance ? group % g.channels : group;
}

// One output of the forward pass.
template <typename T>
MINIDL_HD T norm_forward_element(T x, T mean, T inv_std, T gamma, T beta) {
  return (x - mean) * inv_std * gamma + beta;
}

// The value written by the forward pass: y, or max(y, 0) when a ReLU is fused onto it.
template <typename T>
MINIDL_HD T norm_output_element(T y, bool relu) {
  return relu ? relu_forward_element(y) : y;
}

// The gradient reaching the normalization at element e: dy[e], or — when a ReLU was fused onto
// the output (relu_out is that output, else nullptr) — dy[e] gated by relu_out[e] > 0.
// kFusedRelu says at compile time whether relu_out is given: the CPU loops are compiled once for
// each case, because a test of the pointer inside the loop body keeps GCC from vectorizing it
// (it cannot load relu_out[e] before knowing the pointer is not null, so it branches on every
// element's sign instead: 10-20x slower on random signs). The CUDA kernels take the run-time
// form below — there every thread of a launch takes the same side of the test.
template <bool kFusedRelu, typename T>
MINIDL_HD T norm_incoming_gradient(const T* dy, const T* relu_out, index_t e) {
  if constexpr (kFusedRelu) return relu_backward_element(dy[e], relu_out[e]);
  else return dy[e];
}
template <typename T>
MINIDL_HD T norm_incoming_gradient(const T* dy, const T* relu_out, index_t e) {
  return relu_out ? norm_incoming_gradient<true>(dy, relu_out, e)
                  : norm_incoming_gradient<false>(dy, relu_out, e);
}

// One input gradient. scale = gamma * inv_std; mean_dy and mean_dy_xhat are the group means
// of dy and dy * x_hat (both 0 for fixed statistics: then dx = scale * dy).
template <typename T>
MINIDL_HD T norm_backward_element(T dy, T x, T mean, T inv_std, T scale, T mean_dy,
                                  T mean_dy_xhat) {
  return scale * (dy - mean_dy - (x - mean) * inv_std * mean_dy_xhat);
}

}  // namespace minidl
