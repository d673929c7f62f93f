// norm_cpu.h — the CPU launchers' declarations (see norm.h for what they compute).
#pragma once
#include "norm.h"

namespace minidl {
// mean, var: (groups,) — biased variance, two passes in double (no E[x²] - E[x]² cancellation).
template <typename T>
void norm_statistics_cpu(const T* x, const NormGeometry& g, T* mean, T* var);
// weight, bias: (C,) or nullptr (gamma = 1, beta = 0). relu: write max(y, 0) (a fused ReLU).
template <typename T>
void norm_forward_cpu(const T* x, const NormGeometry& g, const T* mean, const T* var,
                      const T* weight, const T* bias, T eps, bool relu, T* out);
// sum_dy, sum_dy_xhat: (groups,) — the per-group sums the backward needs (and dbeta, dgamma).
// relu_out: the forward's output when a ReLU was fused onto it (it gates dy), else nullptr.
template <typename T>
void norm_backward_sums_cpu(const T* dy, const T* relu_out, const T* x, const NormGeometry& g,
                            const T* mean, const T* var, T eps, T* sum_dy, T* sum_dy_xhat);
// input_stats: the statistics were computed from x (include their gradient) or were fixed.
template <typename T>
void norm_backward_input_cpu(const T* dy, const T* relu_out, const T* x, const NormGeometry& g,
                             const T* mean, const T* var, const T* weight, T eps,
                             const T* sum_dy, const T* sum_dy_xhat, bool input_stats, T* dx);
// Both in one pass over the groups, for statistics computed from x (training): the sums
// (written to sum_dy, sum_dy_xhat) and dx, as the two launchers above give them.
template <typename T>
void norm_backward_cpu(const T* dy, const T* relu_out, const T* x, const NormGeometry& g,
                       const T* mean, const T* var, const T* weight, T eps, T* sum_dy,
                       T* sum_dy_xhat, T* dx);
}  // namespace minidl
