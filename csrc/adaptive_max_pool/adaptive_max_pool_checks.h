// adaptive_max_pool_checks.h — the size checks of adaptive_max_pool2d, shared by both bindings
// (the CPU binding adaptive_max_pool_bind_cpu.cpp, bind_cuda.cpp); minidl/functional/pool.py refuses the same values first with
// messages that name the Python arguments.
#pragma once

#include <string>

#include "../common/checks.h"

namespace minidl {

// batch, channels >= 0; height, width >= 1 (PyTorch refuses an empty plane: its bins would be
// empty); out_h, out_w >= 1; and every product the kernels form fits in int64: the input and
// output sizes, and (i + 1) * size <= out * size in adaptive_bin_end.
inline void check_adaptive_pool_sizes(index_t batch, index_t channels, index_t height,
                                      index_t width, index_t out_h, index_t out_w,
                                      const std::string& op) {
  check(batch >= 0 && channels >= 0, op + ": batch and channels must be >= 0");
  check(height >= 1 && width >= 1, op + ": the input's height and width must be >= 1, got (" +
                                       std::to_string(height) + ", " + std::to_string(width) + ")");
  check(out_h >= 1 && out_w >= 1, op + ": output_size must be >= 1, got (" +
                                      std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
  checked_product({batch, channels, height, width}, op + ": the input size (N * C * H * W)");
  checked_product({batch, channels, out_h, out_w}, op + ": the output size (N * C * out_h * out_w)");
  checked_mul(out_h, height, op + ": out_h * height");
  checked_mul(out_w, width, op + ": out_w * width");
}

}  // namespace minidl
