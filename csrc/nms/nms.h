// nms.h — the per-element body of non-maximum suppression, shared by the CPU and CUDA launchers.
//
// Greedy NMS walks the boxes in decreasing score order and keeps a box unless a box kept
// before it overlaps it with IoU > iou_threshold. The IoU tests are the O(N²) part, and they
// parallelize once the sorted boxes are cut into blocks of 64: one "element" is the pair
// (row box i, column block c), a 64-bit word whose bit k says "row i suppresses column box
// 64c + k". Only the walk that keeps rows in order is serial, and it merely ORs words.
//
// Conventions (torchvision's): boxes are (x1, y1, x2, y2); IoU = inter / (area_i + area_j -
// inter), computed in the boxes' dtype; suppression needs IoU *strictly* greater than the
// threshold. Two differences, both documented in minidl/ops/nms.py: an inverted box (x2 < x1
// or y2 < y1) has zero area instead of a signed one, and labels (batched_nms) make boxes of
// different classes never suppress each other.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "../common/host_device.h"

namespace minidl {

constexpr int kNmsWord = 64;  // boxes per suppression word

// Sorted boxes as a structure of arrays: the 64 columns of a word are contiguous in memory.
template <typename T>
struct NmsBoxes {
  const T* x1;
  const T* y1;
  const T* x2;
  const T* y2;
  const T* area;         // max(0, x2 - x1) * max(0, y2 - y1)
  const index_t* label;  // class of each box (nullptr: all one class); classes never mix
};

template <typename T>
MINIDL_HD T nms_max(T a, T b) { return a < b ? b : a; }
template <typename T>
MINIDL_HD T nms_min(T a, T b) { return b < a ? b : a; }

// Does box a suppress box b? The IoU is a division in T, exactly as torchvision computes it,
// so the answer at IoUs within rounding of the threshold is the same. When both boxes are
// empty the ratio is 0/0 = NaN and NaN > threshold is false: empty boxes never suppress.
// NaN/inf coordinates also end in a NaN or a plain comparison: no index is derived from them.
template <typename T>
MINIDL_HD bool iou_exceeds(T ax1, T ay1, T ax2, T ay2, T a_area, T bx1, T by1, T bx2, T by2,
                           T b_area, T threshold) {
  const T w = nms_max(T(0), nms_min(ax2, bx2) - nms_max(ax1, bx1));
  const T h = nms_max(T(0), nms_min(ay2, by2) - nms_max(ay1, by1));
  const T inter = w * h;
  return inter / (a_area + b_area - inter) > threshold;
}

// One element: the suppression word of row box `i` (an index into `rows`) against `count` <= 64
// column boxes starting at sorted index `col0` (`cols` already points at column col0, so the
// CUDA kernel can pass a copy of the block in shared memory). Only columns after the row
// (j > i) can be suppressed by it; bits of columns j <= i stay 0. label == nullptr: one class.
// Called by the CUDA kernel (nms_cuda.cu) and the CPU's textbook form (nms_cpu.cpp); the CPU's
// fast form (nms_cpu_fast.cpp) computes the same word with a vectorized loop.
template <typename T>
MINIDL_HD std::uint64_t nms_suppression_word(const NmsBoxes<T>& rows, index_t i,
                                             const NmsBoxes<T>& cols, index_t col0, int count,
                                             T threshold) {
  const T x1 = rows.x1[i], y1 = rows.y1[i], x2 = rows.x2[i], y2 = rows.y2[i], area = rows.area[i];
  const int first = i >= col0 ? static_cast<int>(i - col0 + 1) : 0;  // first column after row i
  const bool labelled = rows.label != nullptr;
  const index_t label = labelled ? rows.label[i] : 0;
  std::uint64_t word = 0;
  for (int k = first; k < count; ++k) {
    const bool hit = (!labelled || cols.label[k] == label) &&
                     iou_exceeds(x1, y1, x2, y2, area, cols.x1[k], cols.y1[k], cols.x2[k],
                                 cols.y2[k], cols.area[k], threshold);
    word |= static_cast<std::uint64_t>(hit) << k;
  }
  return word;
}

// torchvision compares the T-valued IoU with a *double* threshold. Comparing in T instead
// gives the same answers if the threshold is first rounded *down* to the largest T not above
// it: for a T value v, v > t  <=>  v > that rounded-down t. (Rounding to nearest would be
// wrong: with t = 0.3, float(0.3) > 0.3, and an IoU equal to float(0.3) exceeds 0.3.)
template <typename T>
inline T threshold_in(double t) {
  T r = static_cast<T>(t);
  if (static_cast<double>(r) > t) r = std::nextafter(r, -std::numeric_limits<T>::infinity());
  return r;
}

}  // namespace minidl
