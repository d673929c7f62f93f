// norm_cpu.cpp — loops calling the shared bodies of norm.h, one group (channel or plane) at a time.
//
// Why a kernel at all: in NumPy, batch norm is ~10 whole-array passes and 3-4 new arrays per
// direction (x - mean, its square, x_hat, the scaled copy, ...). Here the forward reads x three
// times (mean, variance, output) and writes only the output; the backward reads dy and x twice
// and writes only dx; and x itself, not a normalized copy, is what the backward keeps.
// The sums accumulate in double, in SIMD lanes (`omp simd reduction`: without it the compiler
// may not reorder a floating-point sum and adds one value per ~4 cycles). Threads only for
// large inputs, for the reason given at kParallelElements in im2col/im2col_cpu.h (OpenBLAS's
// threads run between these calls in a network).
#include "norm_cpu.h"

#include "../common/vector_clones.h"

#include <cmath>

namespace minidl {

constexpr index_t kParallelElements = index_t(1) << 22;

static index_t elements(const NormGeometry& g) { return g.batch * g.channels * g.plane; }

template <typename T>
static T inv_std_of(T var, T eps) { return T(1) / std::sqrt(var + eps); }

template <typename T>
MINIDL_VECTOR_CLONES void norm_statistics_cpu(const T* x, const NormGeometry& g, T* mean, T* var) {
  const index_t groups = norm_groups(g), runs = norm_runs(g);
  const double count = double(runs * g.plane);
#pragma omp parallel for schedule(static) if (elements(g) >= kParallelElements)
  for (index_t group = 0; group < groups; ++group) {
    double sum = 0;
    for (index_t r = 0; r < runs; ++r) {
      const T* run = x + norm_run_start(g, group, r);
#pragma omp simd reduction(+ : sum)
      for (index_t p = 0; p < g.plane; ++p) sum += run[p];
    }
    const double m = sum / count;
    double squares = 0;
    for (index_t r = 0; r < runs; ++r) {
      const T* run = x + norm_run_start(g, group, r);
#pragma omp simd reduction(+ : squares)
      for (index_t p = 0; p < g.plane; ++p) squares += (run[p] - m) * (run[p] - m);
    }
    mean[group] = T(m);
    var[group] = T(squares / count);
  }
}

template <typename T>
MINIDL_VECTOR_CLONES void norm_forward_cpu(const T* __restrict x, const NormGeometry& g,
                                           const T* mean, const T* var, const T* weight,
                                           const T* bias, T eps, bool relu, T* __restrict out) {
  const index_t groups = norm_groups(g), runs = norm_runs(g);
#pragma omp parallel for schedule(static) if (elements(g) >= kParallelElements)
  for (index_t group = 0; group < groups; ++group) {
    const index_t c = norm_channel_of_group(g, group);
    const T m = mean[group], inv_std = inv_std_of(var[group], eps);
    const T gamma = weight ? weight[c] : T(1), beta = bias ? bias[c] : T(0);
    for (index_t r = 0; r < runs; ++r) {
      const index_t start = norm_run_start(g, group, r);
      for (index_t p = 0; p < g.plane; ++p)
        out[start + p] = norm_output_element(
            norm_forward_element(x[start + p], m, inv_std, gamma, beta), relu);
    }
  }
}

// The sums over one group's runs, and one group's input gradients: each written once, compiled
// for a fused ReLU and without (see norm_incoming_gradient in norm.h), and always_inline — a
// helper called from a MINIDL_VECTOR_CLONES launcher is not cloned itself, so compiled on its
// own it would be the baseline (SSE2) code in every clone.
template <bool kFusedRelu, typename T>
__attribute__((always_inline)) inline void norm_backward_sums_group(
    const T* dy, const T* relu_out, const T* x, const NormGeometry& g, index_t group, T m,
    T inv_std, double& s, double& s_xhat) {
  const index_t runs = norm_runs(g);  // a local bound, or GCC leaves the fused-ReLU loop scalar
  for (index_t r = 0; r < runs; ++r) {
    const index_t start = norm_run_start(g, group, r);
#pragma omp simd reduction(+ : s, s_xhat)
    for (index_t p = 0; p < g.plane; ++p) {
      const T d = norm_incoming_gradient<kFusedRelu>(dy, relu_out, start + p);
      s += d;
      s_xhat += d * ((x[start + p] - m) * inv_std);
    }
  }
}

template <bool kFusedRelu, typename T>
__attribute__((always_inline)) inline void norm_backward_input_group(
    const T* __restrict dy, const T* relu_out, const T* __restrict x, const NormGeometry& g,
    index_t group, T m, T inv_std, T scale, T mean_dy, T mean_dy_xhat, T* __restrict dx) {
  const index_t runs = norm_runs(g);  // a local bound, or GCC leaves the fused-ReLU loop scalar
  for (index_t r = 0; r < runs; ++r) {
    const index_t start = norm_run_start(g, group, r);
    for (index_t p = 0; p < g.plane; ++p)
      dx[start + p] = norm_backward_element(
          norm_incoming_gradient<kFusedRelu>(dy, relu_out, start + p), x[start + p], m, inv_std,
          scale, mean_dy, mean_dy_xhat);
  }
}

// One group's two sums, written to sum_dy[group] and sum_dy_xhat[group] (the fused-ReLU or the
// plain loop), and one group's dx from its sums (or, for fixed statistics, without them): what
// each launcher below does per group.
template <typename T>
__attribute__((always_inline)) inline void norm_backward_sums_of_group(
    const T* dy, const T* relu_out, const T* x, const NormGeometry& g, index_t group,
    const T* mean, const T* var, T eps, T* sum_dy, T* sum_dy_xhat) {
  const T m = mean[group], inv_std = inv_std_of(var[group], eps);
  double s = 0, s_xhat = 0;
  if (relu_out)
    norm_backward_sums_group<true>(dy, relu_out, x, g, group, m, inv_std, s, s_xhat);
  else
    norm_backward_sums_group<false>(dy, relu_out, x, g, group, m, inv_std, s, s_xhat);
  sum_dy[group] = T(s);
  sum_dy_xhat[group] = T(s_xhat);
}

template <typename T>
__attribute__((always_inline)) inline void norm_backward_input_of_group(
    const T* __restrict dy, const T* relu_out, const T* __restrict x, const NormGeometry& g,
    index_t group, const T* mean, const T* var, const T* weight, T eps, const T* sum_dy,
    const T* sum_dy_xhat, bool input_stats, T* __restrict dx) {
  const T count = T(norm_runs(g) * g.plane);
  const T m = mean[group], inv_std = inv_std_of(var[group], eps);
  const T scale = (weight ? weight[norm_channel_of_group(g, group)] : T(1)) * inv_std;
  const T mean_dy = input_stats ? sum_dy[group] / count : T(0);
  const T mean_dy_xhat = input_stats ? sum_dy_xhat[group] / count : T(0);
  if (relu_out)
    norm_backward_input_group<true>(dy, relu_out, x, g, group, m, inv_std, scale, mean_dy,
                                    mean_dy_xhat, dx);
  else
    norm_backward_input_group<false>(dy, relu_out, x, g, group, m, inv_std, scale, mean_dy,
                                     mean_dy_xhat, dx);
}

template <typename T>
MINIDL_VECTOR_CLONES void norm_backward_sums_cpu(const T* dy, const T* relu_out, const T* x,
                                                 const NormGeometry& g, const T* mean,
                                                 const T* var, T eps, T* sum_dy,
                                                 T* sum_dy_xhat) {
  const index_t groups = norm_groups(g);
#pragma omp parallel for schedule(static) if (elements(g) >= kParallelElements)
  for (index_t group = 0; group < groups; ++group)
    norm_backward_sums_of_group(dy, relu_out, x, g, group, mean, var, eps, sum_dy, sum_dy_xhat);
}

template <typename T>
MINIDL_VECTOR_CLONES void norm_backward_input_cpu(const T* __restrict dy, const T* relu_out,
                                                  const T* __restrict x, const NormGeometry& g,
                                                  const T* mean, const T* var, const T* weight,
                                                  T eps, const T* sum_dy, const T* sum_dy_xhat,
                                                  bool input_stats, T* __restrict dx) {
  const index_t groups = norm_groups(g);
#pragma omp parallel for schedule(static) if (elements(g) >= kParallelElements)
  for (index_t group = 0; group < groups; ++group)
    norm_backward_input_of_group(dy, relu_out, x, g, group, mean, var, weight, eps, sum_dy,
                                 sum_dy_xhat, input_stats, dx);
}

// The training backward in one pass over the groups: each group's sums, then at once its input
// gradients (the statistics came from x). The same per-group code as norm_backward_sums_cpu
// followed by norm_backward_input_cpu with input_stats — bit for bit — but a group's dy, x and
// relu_out are read the second time while they are still in cache (16 images × 32² of one
// channel: 64 KB per array), not streamed from memory a second time.
template <typename T>
MINIDL_VECTOR_CLONES void norm_backward_cpu(const T* __restrict dy, const T* relu_out,
                                            const T* __restrict x, const NormGeometry& g,
                                            const T* mean, const T* var, const T* weight, T eps,
                                            T* sum_dy, T* sum_dy_xhat, T* __restrict dx) {
  const index_t groups = norm_groups(g);
#pragma omp parallel for schedule(static) if (elements(g) >= kParallelElements)
  for (index_t group = 0; group < groups; ++group) {
    norm_backward_sums_of_group(dy, relu_out, x, g, group, mean, var, eps, sum_dy, sum_dy_xhat);
    norm_backward_input_of_group(dy, relu_out, x, g, group, mean, var, weight, eps, sum_dy,
                                 sum_dy_xhat, /*input_stats=*/true, dx);
  }
}

#define MINIDL_NORM_INSTANTIATE(T)                                                              \
  template void norm_statistics_cpu<T>(const T*, const NormGeometry&, T*, T*);                  \
  template void norm_forward_cpu<T>(const T*, const NormGeometry&, const T*, const T*,          \
                                    const T*, const T*, T, bool, T*);                           \
  template void norm_backward_sums_cpu<T>(const T*, const T*, const T*, const NormGeometry&,    \
                                          const T*, const T*, T, T*, T*);                       \
  template void norm_backward_input_cpu<T>(const T*, const T*, const T*, const NormGeometry&,   \
                                           const T*, const T*, const T*, T, const T*, const T*, \
                                           bool, T*);                                   \
  template void norm_backward_cpu<T>(const T*, const T*, const T*, const NormGeometry&,         \
                                     const T*, const T*, const T*, T, T*, T*, T*);
MINIDL_NORM_INSTANTIATE(float)
MINIDL_NORM_INSTANTIATE(double)
#undef MINIDL_NORM_INSTANTIATE
}  // namespace minidl
