// roi_checks.h — the argument checks of roi_pool and roi_align, shared by both bindings.
//
// the CPU bindings (roi_pool_bind_cpu.cpp, roi_align_bind_cpu.cpp) and bind_cuda.cpp call the same functions, and minidl/kernels/roi_pool.py /
// roi_align.py repeat them word for word for the NumPy reference, so all three paths refuse
// the same arguments with the same message.
//
// Why bounds at all: the pooled size and an explicit sampling ratio multiply into the work and
// the scratch tables of a RoI (pooled_h * pooled_w cells of grid_h * grid_w samples each).
// Unbounded, a typo such as sampling_ratio=20000 asks for 4·10^8 samples per cell (the backward
// pass's tap table alone would need ~20 GB), and 2**40 overflows the sample count and loops
// for ever. The bounds are far above any use — torchvision's models pool 7×7 or 14×14 (28×28
// for masks) with sampling_ratio 0 or 2 — and low enough that every product below stays small.
#pragma once

#include <cmath>

#include "../roi_align/roi_align.h"  // kMaxSamplingGrid
#include "checks.h"

namespace minidl {

// output_size: at most this many bins per axis (a 4096×4096 grid is 16.7M cells per RoI and
// channel — a crop far larger than any feature map; R-CNN's warped crops are 64-227 px).
constexpr index_t kMaxPooledSize = 4096;

// spatial_scale finite and >= 0; output_size in [1, kMaxPooledSize] along both axes.
inline void check_roi_params(double spatial_scale, index_t pooled_h, index_t pooled_w,
                             const std::string& op) {
  check(std::isfinite(spatial_scale) && spatial_scale >= 0,
        op + ": spatial_scale must be finite and >= 0");
  check(pooled_h >= 1 && pooled_h <= kMaxPooledSize && pooled_w >= 1 && pooled_w <= kMaxPooledSize,
        op + ": output_size must be in [1, " + std::to_string(kMaxPooledSize) + "], got (" +
            std::to_string(pooled_h) + ", " + std::to_string(pooled_w) + ")");
}

// An explicit sampling ratio has the same cap as the adaptive grid (kMaxSamplingGrid = 256
// samples per bin and axis); <= 0 asks for the adaptive grid.
inline void check_sampling_ratio(index_t sampling_ratio, const std::string& op) {
  check(sampling_ratio <= kMaxSamplingGrid,
        op + ": sampling_ratio must be <= " + std::to_string(kMaxSamplingGrid) +
            " (<= 0: adaptive), got " + std::to_string(sampling_ratio));
}

// The sizes a RoI kernel walks: output (num_rois, channels, pooled_h, pooled_w) and input /
// grad_input (batch, channels, height, width), all >= 0 and with products that fit in int64.
inline void check_roi_sizes(index_t num_rois, index_t batch, index_t channels, index_t height,
                            index_t width, index_t pooled_h, index_t pooled_w,
                            const std::string& op) {
  check(num_rois >= 0 && channels >= 0, op + ": num_rois and channels must be >= 0");
  check(batch >= 0 && height >= 0 && width >= 0, op + ": batch_size, height and width must be >= 0");
  checked_product({num_rois, channels, pooled_h, pooled_w},
                  op + ": the output size (num_rois * channels * pooled_h * pooled_w)");
  checked_product({batch, channels, height, width},
                  op + ": the input size (batch_size * channels * height * width)");
}

}  // namespace minidl
