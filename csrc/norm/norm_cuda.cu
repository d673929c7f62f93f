// norm_cuda.cu — batch / instance normalization on the GPU, calling the bodies of norm.h.
//
// The per-element passes (forward output, input gradient) run one thread per element. The
// per-group sums run one block per group: each thread adds a strided share of the group's
// values (in double), then the block adds the threads' partial sums in shared memory.
#include "../common/cuda_check.h"
#include "norm.h"
#include "norm_cuda.h"

namespace minidl {

constexpr int kReduceThreads = 256;

// Sum of the kReduceThreads values in `shared` (each thread has written its own); all threads
// of the block must call it. Returns the total (valid in every thread).
__device__ double block_sum(double* shared, double value) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // shared is reused by the next call
  return total;
}

// The k-th value of a group: run k / plane, position k % plane.
template <typename T>
__device__ T group_value(const T* a, const NormGeometry& g, index_t group, index_t k) {
  return a[norm_run_start(g, group, k / g.plane) + k % g.plane];
}

template <typename T>
__global__ void norm_statistics_kernel(const T* x, NormGeometry g, T* mean, T* var) {
  __shared__ double shared[kReduceThreads];
  const index_t group = blockIdx.x, count = norm_runs(g) * g.plane;
  double sum = 0;
  for (index_t k = threadIdx.x; k < count; k += kReduceThreads) sum += group_value(x, g, group, k);
  const double m = block_sum(shared, sum) / double(count);
  double squares = 0;  // two passes: the variance of the centred values
  for (index_t k = threadIdx.x; k < count; k += kReduceThreads) {
    const double d = group_value(x, g, group, k) - m;
    squares += d * d;
  }
  const double v = block_sum(shared, squares) / double(count);
  if (threadIdx.x == 0) {
    mean[group] = T(m);
    var[group] = T(v);
  }
}

template <typename T>
__global__ void norm_forward_kernel(const T* x, NormGeometry g, const T* mean, const T* var,
                                    const T* weight, const T* bias, T eps, bool relu, T* out) {
  const index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= g.batch * g.channels * g.plane) return;
  const index_t group = norm_group_of(g, e), c = (e / g.plane) % g.channels;
  const T inv_std = T(1) / sqrt(var[group] + eps);
  out[e] = norm_output_element(norm_forward_element(x[e], mean[group], inv_std,
                                                    weight ? weight[c] : T(1),
                                                    bias ? bias[c] : T(0)),
                               relu);
}

template <typename T>
__global__ void norm_backward_sums_kernel(const T* dy, const T* relu_out, const T* x,
                                          NormGeometry g, const T* mean, const T* var, T eps,
                                          T* sum_dy, T* sum_dy_xhat) {
  __shared__ double shared[kReduceThreads];
  const index_t group = blockIdx.x, count = norm_runs(g) * g.plane;
  const T m = mean[group], inv_std = T(1) / sqrt(var[group] + eps);
  double s = 0, s_xhat = 0;
  for (index_t k = threadIdx.x; k < count; k += kReduceThreads) {
    const index_t e = norm_run_start(g, group, k / g.plane) + k % g.plane;
    const T d = norm_incoming_gradient(dy, relu_out, e);
    s += d;
    s_xhat += d * ((x[e] - m) * inv_std);
  }
  const double total = block_sum(shared, s), total_xhat = block_sum(shared, s_xhat);
  if (threadIdx.x == 0) {
    sum_dy[group] = T(total);
    sum_dy_xhat[group] = T(total_xhat);
  }
}

template <typename T>
__global__ void norm_backward_input_kernel(const T* dy, const T* relu_out, const T* x,
                                           NormGeometry g,
                                           const T* mean, const T* var, const T* weight, T eps,
                                           const T* sum_dy, const T* sum_dy_xhat,
                                           bool input_stats, T* dx) {
  const index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= g.batch * g.channels * g.plane) return;
  const index_t group = norm_group_of(g, e), c = (e / g.plane) % g.channels;
  const T count = T(norm_runs(g) * g.plane);
  const T inv_std = T(1) / sqrt(var[group] + eps);
  const T scale = (weight ? weight[c] : T(1)) * inv_std;
  dx[e] = norm_backward_element(norm_incoming_gradient(dy, relu_out, e), x[e], mean[group],
                                inv_std, scale, input_stats ? sum_dy[group] / count : T(0),
                                input_stats ? sum_dy_xhat[group] / count : T(0));
}

template <typename T>
static const T* ptr(std::uintptr_t p) { return reinterpret_cast<const T*>(p); }
template <typename T>
static T* mut(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

// Calls launch(T{}) with T = float (dtype_code 0) or double (1), then checks the launch.
template <typename Launch>
static void launch_for_dtype(int dtype_code, const char* kernel, Launch&& launch) {
  if (dtype_code == 0)
    launch(float{});
  else
    launch(double{});
  cuda_check(cudaGetLastError(), kernel);
}

void norm_statistics_cuda(std::uintptr_t x, std::int64_t batch, std::int64_t channels,
                          std::int64_t plane, bool per_instance, std::uintptr_t mean,
                          std::uintptr_t var, int dtype_code, std::uintptr_t stream) {
  const NormGeometry g{batch, channels, plane, per_instance};
  const auto groups = static_cast<unsigned int>(norm_groups(g));
  if (groups == 0 || batch * plane == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  launch_for_dtype(dtype_code, "norm_statistics", [&](auto tag) {
    using T = decltype(tag);
    norm_statistics_kernel<T><<<groups, kReduceThreads, 0, s>>>(ptr<T>(x), g, mut<T>(mean),
                                                                 mut<T>(var));
  });
}

void norm_forward_cuda(std::uintptr_t x, std::int64_t batch, std::int64_t channels,
                       std::int64_t plane, bool per_instance, std::uintptr_t mean,
                       std::uintptr_t var, std::uintptr_t weight, std::uintptr_t bias, double eps,
                       bool relu, std::uintptr_t out, int dtype_code, std::uintptr_t stream) {
  const NormGeometry g{batch, channels, plane, per_instance};
  const long long n = batch * channels * plane;
  if (n == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  launch_for_dtype(dtype_code, "norm_forward", [&](auto tag) {
    using T = decltype(tag);
    norm_forward_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(
        ptr<T>(x), g, ptr<T>(mean), ptr<T>(var), ptr<T>(weight), ptr<T>(bias), T(eps), relu,
        mut<T>(out));
  });
}

void norm_backward_sums_cuda(std::uintptr_t dy, std::uintptr_t relu_out, std::uintptr_t x,
                             std::int64_t batch,
                             std::int64_t channels, std::int64_t plane, bool per_instance,
                             std::uintptr_t mean, std::uintptr_t var, double eps,
                             std::uintptr_t sum_dy, std::uintptr_t sum_dy_xhat, int dtype_code,
                             std::uintptr_t stream) {
  const NormGeometry g{batch, channels, plane, per_instance};
  const auto groups = static_cast<unsigned int>(norm_groups(g));
  if (groups == 0 || batch * plane == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  launch_for_dtype(dtype_code, "norm_backward_sums", [&](auto tag) {
    using T = decltype(tag);
    norm_backward_sums_kernel<T><<<groups, kReduceThreads, 0, s>>>(
        ptr<T>(dy), ptr<T>(relu_out), ptr<T>(x), g, ptr<T>(mean), ptr<T>(var), T(eps),
        mut<T>(sum_dy), mut<T>(sum_dy_xhat));
  });
}

void norm_backward_input_cuda(std::uintptr_t dy, std::uintptr_t relu_out, std::uintptr_t x,
                              std::int64_t batch,
                              std::int64_t channels, std::int64_t plane, bool per_instance,
                              std::uintptr_t mean, std::uintptr_t var, std::uintptr_t weight,
                              double eps, std::uintptr_t sum_dy, std::uintptr_t sum_dy_xhat,
                              bool input_stats, std::uintptr_t dx, int dtype_code,
                              std::uintptr_t stream) {
  const NormGeometry g{batch, channels, plane, per_instance};
  const long long n = batch * channels * plane;
  if (n == 0) return;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  launch_for_dtype(dtype_code, "norm_backward_input", [&](auto tag) {
    using T = decltype(tag);
    norm_backward_input_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(
        ptr<T>(dy), ptr<T>(relu_out), ptr<T>(x), g, ptr<T>(mean), ptr<T>(var), ptr<T>(weight),
        T(eps),
        ptr<T>(sum_dy), ptr<T>(sum_dy_xhat), input_stats, mut<T>(dx));
  });
}

}  // namespace minidl
