// nms_cpu.cpp — greedy NMS on the CPU: sort, then suppression words (nms.h) in parallel.
//
// The GPU computes every (row, column-block) word first and walks the rows afterwards. On a
// CPU that wastes work: only the words of *kept* rows matter. So this launcher walks the
// sorted boxes a few blocks of 64 rows at a time (a "step"):
//   1. serially, inside the step: a row is kept unless its bit in `removed` is set; a kept
//      row ORs its words for the step's blocks into `removed` (it suppresses rows after it);
//   2. in parallel (OpenMP over the later column blocks): each later block ORs the words of
//      the step's kept rows into its `removed` word — one thread owns one word, no atomics.
// Memory: the sorted boxes plus ceil(n/64) 64-bit words — never an n×n matrix.
//
// With labels (batched_nms) the boxes are sorted by (label, decreasing score), so every class
// is a contiguous run, and each run is an independent plain NMS (in parallel over classes):
// IoUs are only ever computed within a class, as in torchvision's per-class loop.
#include "nms_cpu.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "nms.h"

namespace minidl {

// Rows decided serially between two parallel steps: 8 blocks of 64. Fewer, larger parallel
// steps keep the cost of the thread synchronisation low, also when another process competes
// for the cores (a thread descheduled at a barrier stalls the others).
constexpr index_t kBlocksPerStep = 8;

// Greedy NMS over sorted boxes [begin, end): appends the kept sorted positions to `kept`.
template <typename T>
static void greedy_run(const std::vector<T>* soa, index_t begin, index_t end, T threshold,
                       bool parallel, std::vector<index_t>& kept) {
  const index_t n = end - begin;
  auto block = [&](index_t c) {  // the boxes of column block c of this run
    const index_t o = begin + c * kNmsWord;
    return NmsBoxes<T>{soa[0].data() + o, soa[1].data() + o, soa[2].data() + o,
                       soa[3].data() + o, soa[4].data() + o, nullptr};
  };
  auto block_size = [&](index_t c) {
    return static_cast<int>(std::min<index_t>(kNmsWord, n - c * kNmsWord));
  };
  auto word = [&](index_t i, index_t c) {  // does row i suppress boxes of column block c?
    return nms_suppression_word(block(0), i, block(c), c * kNmsWord, block_size(c), threshold);
  };
  const index_t words = (n + kNmsWord - 1) / kNmsWord;
  std::vector<std::uint64_t> removed(words, 0);
  std::vector<index_t> step_kept;

  for (index_t w0 = 0; w0 < words; w0 += kBlocksPerStep) {
    const index_t w1 = std::min(words, w0 + kBlocksPerStep);
    // 1. serially, rows of blocks [w0, w1) in order; a kept row updates the words of this step
    step_kept.clear();
    for (index_t b = w0; b < w1; ++b)
      for (int k = 0; k < block_size(b); ++k) {
        if (removed[b] >> k & 1) continue;
        const index_t i = b * kNmsWord + k;
        step_kept.push_back(i);
        kept.push_back(begin + i);
        for (index_t c = b; c < w1; ++c) removed[c] |= word(i, c);
      }
    // 2. in parallel, the step's kept rows suppress boxes of the later blocks
    const index_t pairs = (words - w1) * static_cast<index_t>(step_kept.size()) * kNmsWord;
#pragma omp parallel for schedule(dynamic, 4) if (parallel && pairs > 65536)
    for (index_t c = w1; c < words; ++c) {
      const int size = block_size(c);
      const std::uint64_t full = size == kNmsWord ? ~std::uint64_t(0) : (std::uint64_t(1) << size) - 1;
      std::uint64_t bits = removed[c];
      for (index_t i : step_kept) {
        if (bits == full) break;  // every box of this block is already gone
        bits |= word(i, c);
      }
      removed[c] = bits;
    }
  }
}

template <typename T>
index_t nms_cpu(const T* boxes, const T* scores, const index_t* labels, index_t n,
                double iou_threshold, index_t* keep) {
  if (n <= 0) return 0;
  // Sort by decreasing score (within each label); stable, so equal scores keep the lower index
  // first and the result is deterministic. NaN scores sort last, like -inf: the comparator
  // stays a strict weak ordering, which std::stable_sort needs to stay in bounds. (The Python
  // op rejects NaN scores.)
  auto key = [&](index_t i) {
    const T s = scores[i];
    return s == s ? s : -std::numeric_limits<T>::infinity();
  };
  auto by_score = [&](index_t a, index_t b) { return key(a) > key(b); };
  std::vector<index_t> order(n);
  std::iota(order.begin(), order.end(), index_t(0));
  if (labels)
    std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
      return labels[a] != labels[b] ? labels[a] < labels[b] : by_score(a, b);
    });
  else
    std::stable_sort(order.begin(), order.end(), by_score);

  std::vector<T> soa[5];  // x1, y1, x2, y2, area in sorted order
  for (auto& v : soa) v.resize(n);
  for (index_t s = 0; s < n; ++s) {
    const T* b = boxes + 4 * order[s];
    soa[0][s] = b[0], soa[1][s] = b[1], soa[2][s] = b[2], soa[3][s] = b[3];
    soa[4][s] = nms_max(T(0), b[2] - b[0]) * nms_max(T(0), b[3] - b[1]);
  }
  // Runs of one label ([run_start[r], run_start[r + 1])); a single run without labels.
  std::vector<index_t> run_start{0};
  for (index_t s = 1; s < n && labels; ++s)
    if (labels[order[s]] != labels[order[s - 1]]) run_start.push_back(s);
  run_start.push_back(n);
  const index_t runs = static_cast<index_t>(run_start.size()) - 1;

  const T threshold = threshold_in<T>(iou_threshold);
  std::vector<std::vector<index_t>> kept(runs);
  // One run: parallel inside it. Several: one run per thread, each run serial.
#pragma omp parallel for schedule(dynamic, 1) if (runs > 1 && n > 2048)
  for (index_t r = 0; r < runs; ++r)
    greedy_run(soa, run_start[r], run_start[r + 1], threshold, runs == 1, kept[r]);

  index_t num_kept = 0;
  for (const auto& run : kept)
    for (index_t s : run) keep[num_kept++] = order[s];
  if (runs > 1)  // merge the classes: decreasing score, ties by lower index
    std::sort(keep, keep + num_kept, [&](index_t a, index_t b) {
      return key(a) != key(b) ? key(a) > key(b) : a < b;
    });
  return num_kept;
}

template index_t nms_cpu<float>(const float*, const float*, const index_t*, index_t, double, index_t*);
template index_t nms_cpu<double>(const double*, const double*, const index_t*, index_t, double,
                                 index_t*);
}  // namespace minidl
