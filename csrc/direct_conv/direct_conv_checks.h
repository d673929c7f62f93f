// direct_conv_checks.h — the size checks of the direct 3×3 convolution, shared by both bindings.
#pragma once

#include <string>

#include "../common/checks.h"
#include "direct_conv.h"

namespace minidl {

// The checked geometry of an (N, C, H, W) input and F 3×3 filters with padding (pad_h, pad_w)
// and stride 1 or 2: sizes >= 0, padding in [0, 2], an output of at least 1×1, every size in int64.
inline DirectConvGeometry checked_direct_conv_geometry(index_t batch, index_t channels,
                                                       index_t height, index_t width,
                                                       index_t filters, index_t pad_h,
                                                       index_t pad_w, index_t stride,
                                                       const std::string& op) {
  check(batch >= 0 && channels >= 0 && height >= 0 && width >= 0 && filters >= 0,
        op + ": the sizes must be >= 0");
  check(stride == 1 || stride == 2, op + ": stride must be 1 or 2, got " + std::to_string(stride));
  const auto [padded_h, padded_w] = checked_padded_3x3(height, width, pad_h, pad_w, op);
  checked_product({batch, channels, padded_h, padded_w}, op + ": the size of the padded x");
  checked_product({batch, filters, padded_h, padded_w}, op + ": the size of y");
  checked_product({filters, channels, 9}, op + ": the size of w");
  return make_direct_conv_geometry(batch, channels, height, width, filters, pad_h, pad_w, stride);
}

}  // namespace minidl
