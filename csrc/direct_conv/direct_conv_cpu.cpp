// direct_conv_cpu.cpp — the textbook CPU form: OpenMP loops over the elements calling the
// shared bodies of direct_conv.h (one output value; one filter tap of the weight gradient).
#include "direct_conv_cpu.h"

namespace minidl {

template <typename T>
void direct_conv_cpu(const T* x, const T* w, const T* bias, const DirectConvGeometry& g, T* y) {
  const index_t total = g.batch * g.filters * g.out_h * g.out_w;
#pragma omp parallel for schedule(static) if (total * g.channels > 65536)
  for (index_t i = 0; i < total; ++i) {
    const index_t ox = i % g.out_w, oy = i / g.out_w % g.out_h;
    const index_t f = i / (g.out_w * g.out_h) % g.filters, n = i / (g.out_w * g.out_h * g.filters);
    y[i] = direct_conv_value(x, w, bias, g, n, f, oy, ox);
  }
}

template <typename T>
void direct_conv_weight_grad_cpu(const T* x, const T* dy, const DirectConvGeometry& g, T* dW) {
  const index_t k = g.kernel, taps = k * k, total = g.filters * g.channels * taps;
#pragma omp parallel for schedule(static) if (total * g.batch * g.out_h * g.out_w > 65536)
  for (index_t i = 0; i < total; ++i) {
    const index_t kx = i % k, ky = i / k % k, c = i / taps % g.channels, f = i / (taps * g.channels);
    dW[i] = direct_conv_weight_grad_value(x, dy, g, f, c, ky, kx);
  }
}

#define MINIDL_INSTANTIATE(T)                                                                    \
  template void direct_conv_cpu<T>(const T*, const T*, const T*, const DirectConvGeometry&, T*); \
  template void direct_conv_weight_grad_cpu<T>(const T*, const T*, const DirectConvGeometry&, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl
