// direct_conv_checks.h — the size checks of the direct K×K convolution, shared by both bindings.
#pragma once

#include <string>

#include "../common/checks.h"
#include "direct_conv.h"

namespace minidl {

// The kernel sizes the fast form is compiled for (direct_conv_cpu_fast.cpp's kernel_dispatch).
inline bool is_direct_conv_kernel(index_t kernel) {
  return kernel == 3 || kernel == 5 || kernel == 7 || kernel == 9;
}

// The checked geometry of an (N, C, H, W) input and F K×K filters with padding (pad_h, pad_w)
// and stride 1 or 2: sizes >= 0, K in {3, 5, 7, 9}, padding in [0, K − 1], an output of at least
// 1×1, every size in int64.
inline DirectConvGeometry checked_direct_conv_geometry(index_t batch, index_t channels,
                                                       index_t height, index_t width,
                                                       index_t filters, index_t kernel,
                                                       index_t pad_h, index_t pad_w,
                                                       index_t stride, const std::string& op) {
  check(batch >= 0 && channels >= 0 && height >= 0 && width >= 0 && filters >= 0,
        op + ": the sizes must be >= 0");
  check(stride == 1 || stride == 2, op + ": stride must be 1 or 2, got " + std::to_string(stride));
  check(is_direct_conv_kernel(kernel),
        op + ": the kernel must be 3x3, 5x5, 7x7 or 9x9, got " + std::to_string(kernel));
  const auto [padded_h, padded_w] = checked_padded_square(height, width, kernel, pad_h, pad_w, op);
  checked_product({batch, channels, padded_h, padded_w}, op + ": the size of the padded x");
  checked_product({batch, filters, padded_h, padded_w}, op + ": the size of y");
  checked_product({filters, channels, kernel, kernel}, op + ": the size of w");
  return make_direct_conv_geometry(batch, channels, height, width, filters, kernel, pad_h, pad_w,
                                   stride);
}

}  // namespace minidl
