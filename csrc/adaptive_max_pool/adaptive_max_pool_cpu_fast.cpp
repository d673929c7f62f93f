// adaptive_max_pool_cpu_fast.cpp — the fast CPU form of adaptive max pooling's forward.
//
// The textbook loop (adaptive_max_pool_cpu.cpp) is the CUDA kernel's one thread per output cell:
// each cell finds its plane, row and column and its bin's edges with about ten integer
// divisions, which cost more than the 2×2 maximum of a VGG pool itself (pool1 at 256²: 19 ms).
// Here a thread takes whole planes, the column bins' edges are computed once per call and a row
// bin's once per output row; each cell is then the same shared body (adaptive_max_over_bin),
// with the same comparisons in the same order — the results equal the textbook's bit for bit.
#include <vector>

#include "adaptive_max_pool.h"
#include "adaptive_max_pool_cpu.h"

namespace minidl {

template <typename T>
void adaptive_max_pool2d_forward_cpu_fast(const T* input, index_t batch, index_t channels,
                                          index_t height, index_t width, index_t out_h,
                                          index_t out_w, T* output, index_t* argmax) {
  std::vector<index_t> w0(out_w), w1(out_w);          // the column bins, the same for every row
  for (index_t ow = 0; ow < out_w; ++ow)
    w0[ow] = adaptive_bin_start(ow, out_w, width), w1[ow] = adaptive_bin_end(ow, out_w, width);
  const index_t planes = batch * channels, plane = height * width, cells = out_h * out_w;
#pragma omp parallel for schedule(static) if (planes * (plane + cells) > 65536)
  for (index_t nc = 0; nc < planes; ++nc) {
    for (index_t oh = 0; oh < out_h; ++oh) {
      const index_t h0 = adaptive_bin_start(oh, out_h, height), h1 = adaptive_bin_end(oh, out_h, height);
      const index_t cell = nc * cells + oh * out_w;
      for (index_t ow = 0; ow < out_w; ++ow)
        adaptive_max_over_bin(input + nc * plane, width, h0, h1, w0[ow], w1[ow], output + cell + ow,
                              argmax + cell + ow);
    }
  }
}

template void adaptive_max_pool2d_forward_cpu_fast<float>(const float*, index_t, index_t, index_t,
                                                          index_t, index_t, index_t, float*, index_t*);
template void adaptive_max_pool2d_forward_cpu_fast<double>(const double*, index_t, index_t, index_t,
                                                           index_t, index_t, index_t, double*,
                                                           index_t*);
}  // namespace minidl
