// nms_cpu_fast.cpp — greedy NMS on the CPU, fast form (minidl._C's default): sort, then the
// suppression words computed lazily. The same result as the textbook form (nms_cpu.cpp).
//
// The GPU (and nms_cpu.cpp) computes every (row, column-block) word first and walks the rows
// afterwards. On a CPU that wastes work: only the words of *kept* rows matter. So one thread, the walker, goes
// through the sorted boxes a step of 8 blocks (512 rows) at a time:
//   * it first brings the `removed` words of the step's blocks up to date with the rows kept in
//     earlier steps (ORing their suppression words in);
//   * then it decides the rows in order — keep a row unless its `removed` bit is set — and ORs
//     each kept row's words for the rest of the step into `removed`.
// Done alone, that is the serial algorithm: IoUs only for (kept row, later block) pairs.
//
// Helper threads (OpenMP, when the input is large) do the same ORs ahead of the walker: after
// each step they apply its kept rows to the far blocks, farthest first, and record per block
// how many steps they have applied. The walker never waits for a helper: for every block it
// needs, it applies itself whatever steps the helpers have not recorded yet. ORing a word twice
// changes nothing, so a late or descheduled helper costs time, never correctness, and the
// result is the same whatever the timing. (A parallel-for with a barrier per step would stall
// for a whole scheduler time slice whenever another process holds one of the cores.)
// Memory: the sorted boxes plus a few arrays of ceil(n/64) words — never an n×n matrix.
//
// With labels (batched_nms) the boxes are sorted by (label, decreasing score), so every class
// is a contiguous run, and each run is an independent plain NMS (in parallel over classes):
// IoUs are only ever computed within a class, as in torchvision's per-class loop.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../common/parallel.h"
#include "nms_cpu.h"
#include "nms_sort.h"

namespace minidl {

constexpr index_t kBlocksPerStep = 8;  // blocks of 64 rows the walker decides per step
constexpr index_t kParallelBoxes = 8192;  // below this, helper threads do not pay for themselves

// nms_suppression_word (nms.h) for one class, vectorized: first decide the columns into bytes —
// a loop of plain float operations that the compiler vectorizes (4 or 8 columns per
// instruction; the body's `word |= hit << k` does not) — then pack 8 bytes (each 0 or 1,
// little-endian) into 8 bits with one multiplication: byte j lands on bit 56 + j.
template <typename T>
static std::uint64_t packed_suppression_word(const NmsBoxes<T>& rows, index_t i,
                                             const NmsBoxes<T>& cols, index_t col0, int count,
                                             T threshold) {
  const T x1 = rows.x1[i], y1 = rows.y1[i], x2 = rows.x2[i], y2 = rows.y2[i], area = rows.area[i];
  const int first = i >= col0 ? static_cast<int>(i - col0 + 1) : 0;  // first column after row i
  unsigned char hits[kNmsWord] = {};
  for (int k = first; k < count; ++k)
    hits[k] = iou_exceeds(x1, y1, x2, y2, area, cols.x1[k], cols.y1[k], cols.x2[k], cols.y2[k],
                          cols.area[k], threshold);
  std::uint64_t word = 0;
  for (int byte = 0; byte < kNmsWord / 8; ++byte) {
    std::uint64_t eight;
    std::memcpy(&eight, hits + 8 * byte, 8);
    word |= ((eight * 0x0102040810204080ULL) >> 56) << (8 * byte);
  }
  return word;
}

// One greedy pass over the sorted boxes [begin, begin + n), shared by the walker and helpers.
template <typename T>
class GreedyPass {
 public:
  GreedyPass(const SortedBoxes<T>* sorted, index_t begin, index_t n, T threshold)
      : sorted_(sorted), begin_(begin), n_(n), threshold_(threshold),
        words_((n + kNmsWord - 1) / kNmsWord), steps_((words_ + kBlocksPerStep - 1) / kBlocksPerStep),
        removed_(words_), applied_(words_), kept_(n), step_end_(steps_) {
    for (index_t c = 0; c < words_; ++c) removed_[c].store(0), applied_[c].store(0);
  }

  // The walker: decides every row, in order. Returns the number of kept rows (kept(k) each).
  index_t walk() {
    index_t count = 0;
    for (index_t s = 0; s < steps_; ++s) {
      const index_t w0 = s * kBlocksPerStep, w1 = std::min(words_, w0 + kBlocksPerStep);
      walker_word_.store(w0, std::memory_order_relaxed);
      for (index_t c = w0; c < w1; ++c)  // the earlier steps no helper has applied to block c
        for (index_t t = applied_[c].load(std::memory_order_acquire); t < s; ++t) apply(t, c);
      for (index_t b = w0; b < w1; ++b)
        for (int k = 0; k < block_size(b); ++k) {
          if (removed_[b].load(std::memory_order_relaxed) >> k & 1) continue;
          const index_t i = b * kNmsWord + k;
          kept_[count++] = i;
          for (index_t c = b; c < w1; ++c) removed_[c].fetch_or(word(i, c), std::memory_order_relaxed);
        }
      step_end_[s] = count;
      published_.store(s + 1, std::memory_order_release);  // helpers may now apply step s
    }
    finished_.store(true, std::memory_order_release);
    return count;
  }

  // Helper `h` of `helpers`: owns blocks c with c % helpers == h and applies each published
  // step to them, farthest block first, stopping where the walker will soon be (it does those).
  void help(index_t h, index_t helpers) {
    for (index_t s = 0; s < steps_; ++s) {
      while (published_.load(std::memory_order_acquire) <= s) {
        if (finished_.load(std::memory_order_acquire)) return;
        std::this_thread::yield();
      }
      const index_t nearest = (s + 1) * kBlocksPerStep;  // the first block after step s
      index_t c = words_ - 1 - ((words_ - 1 - h) % helpers + helpers) % helpers;
      for (; c >= nearest && c >= 0; c -= helpers) {
        if (finished_.load(std::memory_order_relaxed)) return;
        if (c < walker_word_.load(std::memory_order_relaxed) + 2 * kBlocksPerStep) break;
        if (applied_[c].load(std::memory_order_relaxed) != s) break;  // only in-order steps
        apply(s, c);
        applied_[c].store(s + 1, std::memory_order_release);
      }
    }
  }

  index_t kept(index_t k) const { return begin_ + kept_[k]; }

 private:
  NmsBoxes<T> block(index_t c) const {  // the boxes of column block c
    const index_t o = begin_ + c * kNmsWord;
    return sorted_->from(o, /*with_labels=*/false);  // a run holds one class
  }
  int block_size(index_t c) const {
    return static_cast<int>(std::min<index_t>(kNmsWord, n_ - c * kNmsWord));
  }
  std::uint64_t word(index_t i, index_t c) const {  // which boxes of block c row i suppresses
    return packed_suppression_word(block(0), i, block(c), c * kNmsWord, block_size(c), threshold_);
  }
  // OR the words of step t's kept rows into removed[c] (idempotent: may run twice).
  void apply(index_t t, index_t c) {
    const int size = block_size(c);
    const std::uint64_t full = size == kNmsWord ? ~std::uint64_t(0) : (std::uint64_t(1) << size) - 1;
    std::uint64_t bits = removed_[c].load(std::memory_order_relaxed);
    for (index_t k = t ? step_end_[t - 1] : 0; k < step_end_[t] && bits != full; ++k)
      bits |= word(kept_[k], c);  // (stops early once every box of the block is gone)
    removed_[c].fetch_or(bits, std::memory_order_relaxed);
  }

  const SortedBoxes<T>* sorted_;
  const index_t begin_, n_;
  const T threshold_;
  const index_t words_, steps_;
  std::vector<std::atomic<std::uint64_t>> removed_;  // bit k of word c: box 64c + k is suppressed
  std::vector<std::atomic<index_t>> applied_;        // steps a helper has ORed into word c
  std::vector<index_t> kept_;                        // kept rows (positions in the run), in order
  std::vector<index_t> step_end_;                    // kept rows of step s end at step_end_[s]
  std::atomic<index_t> published_{0}, walker_word_{0};
  std::atomic<bool> finished_{false};
};

template <typename T>
static void greedy_run(const SortedBoxes<T>* sorted, index_t begin, index_t end, T threshold,
                       bool parallel, std::vector<index_t>& kept) {
  GreedyPass<T> pass(sorted, begin, end - begin, threshold);
  index_t count = 0;
#pragma omp parallel if (parallel)
  {
#ifdef _OPENMP
    const index_t id = omp_get_thread_num(), threads = omp_get_num_threads();
#else
    const index_t id = 0, threads = 1;
#endif
    if (id == 0)
      count = pass.walk();
    else
      pass.help(id - 1, threads - 1);
  }
  for (index_t k = 0; k < count; ++k) kept.push_back(pass.kept(k));
}

template <typename T>
index_t nms_cpu_fast(const T* boxes, const T* scores, const index_t* labels, index_t n,
                     double iou_threshold, index_t* keep) {
  if (n <= 0) return 0;
  const SortedBoxes<T> sorted = sort_boxes(boxes, scores, labels, n, /*group_by_label=*/true);
  const std::vector<index_t>& order = sorted.order;
  // Runs of one label ([run_start[r], run_start[r + 1])); a single run without labels.
  std::vector<index_t> run_start{0};
  for (index_t s = 1; s < n && labels; ++s)
    if (labels[order[s]] != labels[order[s - 1]]) run_start.push_back(s);
  run_start.push_back(n);
  const index_t runs = static_cast<index_t>(run_start.size()) - 1;

  const T threshold = threshold_in<T>(iou_threshold);
  std::vector<std::vector<index_t>> kept(runs);
  // One run: helper threads inside it. Several: one run per thread, each run serial.
  // A greedy pass allocates its bit words and kept list: through a FirstError, so that a
  // bad_alloc in one class never leaves the parallel loop (common/parallel.h).
  FirstError error;
#pragma omp parallel for schedule(dynamic, 1) if (runs > 1 && n >= kParallelBoxes)
  for (index_t r = 0; r < runs; ++r) error.run([&] {
    greedy_run(&sorted, run_start[r], run_start[r + 1], threshold, runs == 1 && n >= kParallelBoxes,
               kept[r]);
  });
  error.rethrow();

  index_t num_kept = 0;
  for (const auto& run : kept)
    for (index_t s : run) keep[num_kept++] = order[s];
  if (runs > 1)  // merge the classes: decreasing score, ties by lower index
    std::sort(keep, keep + num_kept, [&](index_t a, index_t b) {
      const T ka = nms_score_key(scores[a]), kb = nms_score_key(scores[b]);
      return ka != kb ? ka > kb : a < b;
    });
  return num_kept;
}

template index_t nms_cpu_fast<float>(const float*, const float*, const index_t*, index_t, double,
                                     index_t*);
template index_t nms_cpu_fast<double>(const double*, const double*, const index_t*, index_t,
                                      double, index_t*);
}  // namespace minidl
