// nms_cpu.cpp — greedy NMS on the CPU as the GPU computes it: all the suppression words, then
// the walk.
//
// Step 1 (the GPU's nms_mask kernel): the word of every (row box i, column block c) pair —
// bit k says "row i suppresses column box 64c + k" — by nms_suppression_word, the body of
// nms.h that the CUDA kernel calls, one loop iteration where the GPU has one thread. Only
// blocks c >= i's own block: the walk never reads the others. No two iterations write the
// same word, so the loop is parallel and deterministic.
// Step 2 (the GPU's nms_keep kernel): walk the rows in sorted order, keep a row unless a kept
// row has suppressed it (its bit in `removed`), and OR each kept row's words into `removed`.
// Labels (batched_nms) go into the body: boxes of different classes never suppress each other.
// The fast form of the same result is nms_cpu_fast.cpp (minidl._C's default).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "nms_cpu.h"
#include "nms_sort.h"

namespace minidl {

template <typename T>
index_t nms_cpu(const T* boxes, const T* scores, const index_t* labels, index_t n,
                double iou_threshold, index_t* keep) {
  if (n <= 0) return 0;
  const SortedBoxes<T> sorted = sort_boxes(boxes, scores, labels, n, /*group_by_label=*/false);
  const NmsBoxes<T> all = sorted.from(0, true);
  const T threshold = threshold_in<T>(iou_threshold);
  const index_t words = (n + kNmsWord - 1) / kNmsWord;

  // mask[i * words + c], words c >= i / 64 only (the walk reads no others): n * words was
  // checked by the binding; not zero-filled, every word that is read is written first.
  std::unique_ptr<std::uint64_t[]> mask(new std::uint64_t[n * words]);
#pragma omp parallel for schedule(dynamic, 64) if (n >= 1024)
  for (index_t i = 0; i < n; ++i)
    for (index_t c = i / kNmsWord; c < words; ++c) {
      const int count = static_cast<int>(std::min<index_t>(kNmsWord, n - c * kNmsWord));
      mask[i * words + c] = nms_suppression_word(all, i, sorted.from(c * kNmsWord, true),
                                                 c * kNmsWord, count, threshold);
    }

  std::vector<std::uint64_t> removed(words, 0);
  index_t kept = 0;
  for (index_t i = 0; i < n; ++i) {
    if (removed[i / kNmsWord] >> (i % kNmsWord) & 1) continue;
    keep[kept++] = sorted.order[i];
    for (index_t c = i / kNmsWord; c < words; ++c) removed[c] |= mask[i * words + c];
  }
  return kept;
}

template index_t nms_cpu<float>(const float*, const float*, const index_t*, index_t, double, index_t*);
template index_t nms_cpu<double>(const double*, const double*, const index_t*, index_t, double,
                                 index_t*);
}  // namespace minidl
