// im2col_checks.h — the argument checks of im2col / col2im, shared by both bindings.
//
// im2col_bind_cpu.cpp reads the sizes from NumPy arrays, bind_cuda.cpp receives them as plain ints;
// both call checked_conv_geometry first, so the two modules refuse exactly the same arguments.
// Every size the kernels use is derived here once, in checked arithmetic (common/checks.h),
// before any of it reaches a loop: a negative stride, a zero kernel or a product that wraps
// around (channels * kernel_h * kernel_w coming out 0 lets a zero-row `cols` through, and the
// kernel then writes far outside it) is a ValueError naming the argument.
#pragma once

#include "../common/checks.h"
#include "im2col.h"

namespace minidl {

// The checked geometry of a convolution of an (N, C, H, W) input (see im2col.h): the
// hyper-parameters in range, the dilated kernel inside the padded input, and every derived
// size — out_h, out_w, the rows C*kh*kw and columns N*out_h*out_w of cols, the element counts
// of cols and of x — representable in int64. `op` prefixes the messages.
inline ConvGeometry checked_conv_geometry(index_t batch, index_t channels, index_t height,
                                          index_t width, index_t kernel_h, index_t kernel_w,
                                          index_t stride_h, index_t stride_w, index_t pad_h,
                                          index_t pad_w, index_t dilation_h, index_t dilation_w,
                                          const std::string& op) {
  auto pair = [](index_t a, index_t b) {
    return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
  };
  check(batch >= 0 && channels >= 0 && height >= 0 && width >= 0,
        op + ": x's sizes must be >= 0, got (" + std::to_string(batch) + ", " +
            std::to_string(channels) + ", " + std::to_string(height) + ", " +
            std::to_string(width) + ")");
  check(kernel_h >= 1 && kernel_w >= 1,
        op + ": kernel_size must be >= 1, got " + pair(kernel_h, kernel_w));
  check(stride_h >= 1 && stride_w >= 1, op + ": stride must be >= 1, got " + pair(stride_h, stride_w));
  check(pad_h >= 0 && pad_w >= 0, op + ": padding must be >= 0, got " + pair(pad_h, pad_w));
  check(dilation_h >= 1 && dilation_w >= 1,
        op + ": dilation must be >= 1, got " + pair(dilation_h, dilation_w));
  // The extent of the dilated kernel, dilation * (kernel - 1) + 1, must fit in the padded input
  // H + 2 * padding: then out = (padded - extent) / stride + 1 >= 1, and no term can overflow.
  const index_t extent_h = checked_add(
      checked_mul(dilation_h, kernel_h - 1, op + ": dilation * (kernel_size - 1)"), 1,
      op + ": the dilated kernel_size");
  const index_t extent_w = checked_add(
      checked_mul(dilation_w, kernel_w - 1, op + ": dilation * (kernel_size - 1)"), 1,
      op + ": the dilated kernel_size");
  const index_t padded_h =
      checked_add(height, checked_mul(2, pad_h, op + ": 2 * padding"), op + ": height + 2 * padding");
  const index_t padded_w =
      checked_add(width, checked_mul(2, pad_w, op + ": 2 * padding"), op + ": width + 2 * padding");
  check(padded_h >= extent_h && padded_w >= extent_w,
        op + ": kernel_size: the (dilated) kernel " + pair(extent_h, extent_w) +
            " is larger than the padded input " + pair(padded_h, padded_w));
  // The products the kernels form (make_conv_geometry's included), checked before any is formed.
  const index_t out_h = (padded_h - extent_h) / stride_h + 1;
  const index_t out_w = (padded_w - extent_w) / stride_w + 1;
  const index_t rows = checked_product({channels, kernel_h, kernel_w},
                                       op + ": the rows of cols (channels * kernel_h * kernel_w)");
  const index_t columns = checked_product({batch, out_h, out_w},
                                          op + ": the columns of cols (batch * out_h * out_w)");
  checked_mul(rows, columns, op + ": the size of cols (rows * columns)");
  checked_product({batch, channels, height, width}, op + ": the size of x");
  return make_conv_geometry(batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
                            pad_h, pad_w, dilation_h, dilation_w);
}

// C * kh * kw: the rows of the column matrix (checked_conv_geometry checked the product).
inline index_t column_rows(const ConvGeometry& g) { return g.channels * g.kernel_h * g.kernel_w; }

}  // namespace minidl
