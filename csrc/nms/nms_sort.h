// nms_sort.h — the first step of greedy NMS on the CPU, shared by both CPU forms: the boxes in
// decreasing score order, as a structure of arrays (the 64 columns of a word contiguous).
#pragma once

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "nms.h"

namespace minidl {

// NaN scores sort last, like -inf: the comparator stays a strict weak ordering, which
// std::stable_sort needs to stay in bounds. (The Python op rejects NaN scores.)
template <typename T>
T nms_score_key(T score) {
  return score == score ? score : -std::numeric_limits<T>::infinity();
}

template <typename T>
struct SortedBoxes {
  std::vector<index_t> order;                // sorted position -> index of the box in the input
  std::vector<T> x1, y1, x2, y2, area;       // by sorted position
  std::vector<index_t> label;                // by sorted position; empty: one class

  // The boxes from sorted position s on (with_labels: their labels too, else one class).
  NmsBoxes<T> from(index_t s, bool with_labels) const {
    return NmsBoxes<T>{x1.data() + s, y1.data() + s, x2.data() + s, y2.data() + s,
                       area.data() + s, with_labels && !label.empty() ? label.data() + s : nullptr};
  }
};

// boxes (n, 4), scores (n,), labels (n,) or nullptr. Sorted by decreasing score — by (label,
// decreasing score) when group_by_label, so that every class is a contiguous run. Stable: equal
// scores keep the lower index first, so the result is deterministic.
template <typename T>
SortedBoxes<T> sort_boxes(const T* boxes, const T* scores, const index_t* labels, index_t n,
                          bool group_by_label) {
  SortedBoxes<T> s;
  s.order.resize(n);
  std::iota(s.order.begin(), s.order.end(), index_t(0));
  auto by_score = [&](index_t a, index_t b) {
    return nms_score_key(scores[a]) > nms_score_key(scores[b]);
  };
  if (labels && group_by_label)
    std::stable_sort(s.order.begin(), s.order.end(), [&](index_t a, index_t b) {
      return labels[a] != labels[b] ? labels[a] < labels[b] : by_score(a, b);
    });
  else
    std::stable_sort(s.order.begin(), s.order.end(), by_score);
  for (auto* v : {&s.x1, &s.y1, &s.x2, &s.y2, &s.area}) v->resize(n);
  if (labels) s.label.resize(n);
  for (index_t p = 0; p < n; ++p) {
    const T* b = boxes + 4 * s.order[p];
    s.x1[p] = b[0], s.y1[p] = b[1], s.x2[p] = b[2], s.y2[p] = b[3];
    // nms_max(d, 0), not nms_max(0, d): it returns its first argument when the comparison is
    // false, so a NaN side gives a NaN area. Then every IoU of that box is NaN and it neither
    // suppresses nor is suppressed — as in torchvision (its area is NaN too), the NumPy
    // reference and the CUDA path (xp.maximum propagates NaN). nms_max(0, NaN) = 0 made the
    // box's area 0 and the answer depend on which box came first.
    s.area[p] = nms_max(b[2] - b[0], T(0)) * nms_max(b[3] - b[1], T(0));
    if (labels) s.label[p] = labels[s.order[p]];
  }
  return s;
}

}  // namespace minidl
