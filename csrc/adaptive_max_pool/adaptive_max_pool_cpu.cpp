// adaptive_max_pool_cpu.cpp — OpenMP loops over output cells (forward) and input planes
// (backward) calling the shared body (adaptive_max_pool.h).
#include "adaptive_max_pool_cpu.h"

#include "adaptive_max_pool.h"

namespace minidl {

template <typename T>
void adaptive_max_pool2d_forward_cpu(const T* input, index_t batch, index_t channels,
                                     index_t height, index_t width, index_t out_h, index_t out_w,
                                     T* output, index_t* argmax) {
  const index_t plane = height * width, cells = out_h * out_w, total = batch * channels * cells;
  // One iteration per output cell, exactly the CUDA kernel's one thread per cell.
#pragma omp parallel for schedule(static) if (total * (plane / cells + 1) > 65536)
  for (index_t index = 0; index < total; ++index) {
    const index_t p = index % cells, nc = index / cells;  // cell p of plane nc = (n, c)
    adaptive_max_pool_cell(input + nc * plane, height, width, out_h, out_w, p / out_w, p % out_w,
                           output + index, argmax + index);
  }
}

template <typename T>
void adaptive_max_pool2d_backward_cpu(const T* grad_output, const index_t* argmax, index_t batch,
                                      index_t channels, index_t height, index_t width,
                                      index_t out_h, index_t out_w, T* grad_input) {
  const index_t plane = height * width, cells = out_h * out_w, planes = batch * channels;
  // A loop over input planes, not output cells: neighbouring bins overlap, so two cells of one
  // plane can share an argmax; with a whole plane per thread no two threads write one address.
#pragma omp parallel for schedule(static) if (planes * cells > 65536)
  for (index_t nc = 0; nc < planes; ++nc)
    adaptive_max_pool_plane_backward(grad_output + nc * cells, argmax + nc * cells, cells, plane,
                                     grad_input + nc * plane);
}

template void adaptive_max_pool2d_forward_cpu<float>(const float*, index_t, index_t, index_t,
                                                     index_t, index_t, index_t, float*, index_t*);
template void adaptive_max_pool2d_forward_cpu<double>(const double*, index_t, index_t, index_t,
                                                      index_t, index_t, index_t, double*,
                                                      index_t*);
template void adaptive_max_pool2d_backward_cpu<float>(const float*, const index_t*, index_t,
                                                      index_t, index_t, index_t, index_t, index_t,
                                                      float*);
template void adaptive_max_pool2d_backward_cpu<double>(const double*, const index_t*, index_t,
                                                       index_t, index_t, index_t, index_t, index_t,
                                                       double*);
}  // namespace minidl
