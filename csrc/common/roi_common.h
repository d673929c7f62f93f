// roi_common.h — helpers of the RoI kernels (roi_pool, roi_align), for host and device code.
//
// These kernels turn feature-map coordinates into indices. The overloads below pick
// floorf/floor etc. by the argument's type the same way under g++ and nvcc, and `within`
// is the guard that must pass before any such conversion: it is false for NaN and ±inf,
// which would otherwise turn into arbitrary (out-of-range) integers.
#pragma once

#include <cmath>

#include "host_device.h"

namespace minidl {

MINIDL_HD float round_half_away(float v) { return roundf(v); }  // C's round(): 2.5 -> 3, -2.5 -> -3
MINIDL_HD double round_half_away(double v) { return round(v); }
MINIDL_HD float floor_of(float v) { return floorf(v); }
MINIDL_HD double floor_of(double v) { return floor(v); }
MINIDL_HD float ceil_of(float v) { return ceilf(v); }
MINIDL_HD double ceil_of(double v) { return ceil(v); }

// True when v is finite and |v| <= limit (false for NaN: every comparison with NaN is false).
template <typename T>
MINIDL_HD bool within(T v, T limit) { return v >= -limit && v <= limit; }

// v clamped to [0, hi].
MINIDL_HD index_t clamp_index(index_t v, index_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

// The image of a RoI row (batch index, x1, y1, x2, y2), or -1 when roi[0] is not in
// [0, batch_size) — NaN included. Truncates like torchvision's int cast (1.7 -> image 1).
template <typename T>
MINIDL_HD index_t roi_batch_index(const T* roi, index_t batch_size) {
  const T b = roi[0];
  return b >= T(0) && b < static_cast<T>(batch_size) ? static_cast<index_t>(b) : -1;
}

// How a backward body adds a gradient into grad_input: PlainAdd where each address has one
// writer (CPU, deterministic CUDA path); AtomicAdd where threads may collide (fast CUDA path:
// the order of the additions then varies between runs, and so do the last bits of the sums).
struct PlainAdd {
  template <typename T>
  MINIDL_HD void operator()(T* address, T value) const { *address += value; }
};
struct AtomicAdd {
  template <typename T>
  MINIDL_HD void operator()(T* address, T value) const {
#ifdef __CUDA_ARCH__
    atomicAdd(address, value);
#else
    *address += value;  // host code: only ever one thread
#endif
  }
};

}  // namespace minidl
