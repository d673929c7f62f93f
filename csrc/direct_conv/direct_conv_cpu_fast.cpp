// direct_conv_cpu_fast.cpp — the fast CPU form of the direct K×K convolution (minidl._C's default).
//
// The sums of direct_conv.h, arranged so that a core spends its time in fused multiply-adds:
//   * the input is zero-padded once into the caller's scratch (a plane per task), so no tap
//     tests a bound and every row of taps is a plain run of memory — for stride 2 with each row
//     de-interleaved (even columns, then odd ones), so that the every-other inputs of neighbouring
//     outputs are a run of memory too;
//   * forward: a task is one output row of one image for a block of 8 filters. Eight
//     neighbouring outputs of one filter are one AVX2 register (sixteen, one AVX-512 register,
//     on a CPU that has it and rows of 16 outputs or more; rows of at most 8 outputs go two to
//     an AVX-512 register, forward_row_pair_avx512), the block's 8 registers stay in
//     the CPU across all C·K² taps, and each input vector loaded feeds 8 multiply-adds (one per
//     filter, the filter's weight broadcast to all lanes) — no column matrix: each input value
//     is read from cache K² times instead of being copied K² times to memory and read back;
//   * weight gradient (AVX2 instructions): a task is a block of 4 filters and one input
//     channel; image by image, for each kernel row ky in turn (the image's dy block stays in
//     L1 for the K), three taps kx of that row at a time accumulate in 4 × 3 = 12 registers (dy
//     vector × the input vector of tap kx); at the end each sum's 8 lanes are added up. With
//     AVX-512's 32 registers the same 8-float code takes blocks of 8 filters (24 registers).
// The kernel size K (3, 5, 7 or 9) is a template parameter, so that the loops over the taps have
// constant trip counts and unroll: the 3×3 code is what it was before K was a parameter.
// A row's last, partial vector uses masked loads and stores (nothing outside the arrays is read
// or written). Fused multiply-adds round once per product-and-add and the lanes split the sums,
// so the results match the textbook form (direct_conv_cpu.cpp) to rounding, not bit for bit.
//
// This code needs AVX2 and FMA (x86-64 since 2013/2015), and AVX-512F for the 16-lane forwards:
// each function is compiled for its instruction set with a target attribute and runs only where
// the CPU reports it; float64, other CPUs and other architectures run the textbook loops.
// Measured against im2col + GEMM in docs/conv.md.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "direct_conv_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MINIDL_DIRECT_CONV_AVX2 1
#include <immintrin.h>
#endif

namespace minidl {
namespace {

// The widest vectors the forward may use (direct_conv_cpu_fast_set_lanes): 16 = AVX-512 where
// the CPU has it, 8 = AVX2 only.
std::atomic<index_t> allowed_lanes{16};

// Where the odd columns of a padded row start when the stride is 2 (see pad_input).
inline index_t odd_columns_start(index_t padded_width) { return (padded_width + 1) / 2; }

// Threads: each call is one OpenMP parallel region (the caller's), in which the copy and the
// arithmetic are work-shared loops (`omp for`): a barrier ends the copy before any task reads it
// — pad_input's own, or in the weight gradient that of the dy packing which follows the copy.
// minidl's OpenMP threads spin ~0.1 ms after a region and then sleep (GOMP_SPINCOUNT and
// OMP_WAIT_POLICY=PASSIVE, see minidl/__init__.py); waking a sleeping one costs tens to hundreds
// of microseconds on these VMs (docs/conv.md, Threads): one region, not two, per call.

// One row of x (`width` values) into a padded row stored de-interleaved (pad_input): x's column c
// is padded column j = c + pad_w, which goes to even[j / 2] if j is even, else to odd[j / 2].
// Written per pair of x's columns (2m, 2m + 1) — one lands in each half, at m + a constant —
// so that the loop has no branch and vectorizes (a test of each column's parity in the loop
// was a quarter of the FCN's first weight gradient, 16 × 3 × 64²).
template <typename T>
void deinterleave_columns(const T* __restrict source, index_t width, index_t pad_w,
                          T* __restrict even, T* __restrict odd) {
  // x's even columns 2m are padded column 2m + pad_w: in the even half if pad_w is even
  T* const from_even = (pad_w % 2 == 0 ? even : odd) + pad_w / 2;
  T* const from_odd = (pad_w % 2 == 0 ? odd + pad_w / 2 : even + (pad_w + 1) / 2);
  const index_t pairs = width / 2;
  for (index_t m = 0; m < pairs; ++m) {
    from_even[m] = source[2 * m];
    from_odd[m] = source[2 * m + 1];
  }
  if (width % 2) from_even[pairs] = source[width - 1];
}

// The padded copy of x: (N, C, H + 2·pad_h, W + 2·pad_w), zeros around each plane. For stride 2
// each row is stored de-interleaved — its even columns 0, 2, 4, … first, then its odd columns
// (from odd_columns_start) — so that the inputs of 8 neighbouring outputs, which are every other
// input, are again a plain run of memory: tap kx of output ox reads even column ox (kx = 0),
// odd column ox (kx = 1) or even column ox + 1 (kx = 2).
// Without its barrier (kWait false) the caller's next work-shared loop must end in one before
// anything reads the copy (the weight gradient's packing of dy does: one barrier, not two).
template <bool kWait = true, typename T>
void pad_input(const T* x, const DirectConvGeometry& g, T* padded) {
  const index_t ph = g.height + 2 * g.pad_h, pw = g.width + 2 * g.pad_w, planes = g.batch * g.channels;
  const index_t odd_start = odd_columns_start(pw);
#pragma omp for schedule(static) nowait
  for (index_t p = 0; p < planes; ++p) {
    T* out = padded + p * ph * pw;
    const T* in = x + p * g.height * g.width;
    std::fill(out, out + g.pad_h * pw, T(0));                               // rows above
    for (index_t r = 0; r < g.height; ++r) {
      T* row = out + (r + g.pad_h) * pw;
      const T* source = in + r * g.width;
      if (g.stride == 1) {
        std::fill(row, row + g.pad_w, T(0));
        std::copy(source, source + g.width, row + g.pad_w);
        std::fill(row + g.pad_w + g.width, row + pw, T(0));
      } else {
        std::fill(row, row + pw, T(0));                                     // the padding
        deinterleave_columns(source, g.width, g.pad_w, row, row + odd_start);
      }
    }
    std::fill(out + (g.pad_h + g.height) * pw, out + ph * pw, T(0));       // rows below
  }
  if (kWait) {
#pragma omp barrier
  }
}

#ifdef MINIDL_DIRECT_CONV_AVX2
constexpr index_t kLanes = 8;        // floats per AVX2 register
constexpr index_t kFilters = 8;      // forward: the filters of one task
constexpr index_t kGradFilters = 4;  // weight gradient: the filters of one task

// Where tap kx of an output's window lies in its padded row, relative to the output's first tap:
// kx for stride 1; for stride 2 (pad_input's de-interleaved rows) even column kx / 2 or odd
// column kx / 2 (from `odd`, where the odd columns start).
inline index_t tap_column(index_t kx, index_t stride, index_t odd) {
  return stride == 1 ? kx : (kx % 2 ? odd + kx / 2 : kx / 2);
}

bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

bool cpu_has_avx512() {   // (libgcc's check includes the OS saving the 512-bit registers)
  static const bool yes = cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
  return yes;
}

bool cpu_has_avx512vl() {  // 256-bit instructions in all 32 AVX-512 registers
  static const bool yes = cpu_has_avx512() && __builtin_cpu_supports("avx512vl");
  return yes;
}

// The mask that selects the first `count` lanes (1 <= count <= 8) of a masked load or store.
__attribute__((target("avx2"))) inline __m256i first_lanes(index_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <bool kPartial>
__attribute__((target("avx2"))) inline __m256 load(const float* p, __m256i mask) {
  return kPartial ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

__attribute__((target("avx2"))) inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

// Eight outputs (ox … ox+7, the first `count` lanes when kPartial) of 8 filters at row oy:
// acc[f] = bias + Σ_c Σ_k w[f][c][k] · padded row (s·oy + ky) from column ox + kx (stride 1) or
// from the de-interleaved columns of pad_input (stride 2; `odd` is where the odd ones start).
template <bool kPartial, int kStride, int kK>
__attribute__((target("avx2,fma"))) void forward_vector_avx2(
    const float* rows, index_t plane, index_t pw, index_t odd, const float* packed, index_t channels,
    const float* bias, index_t nf, index_t count, float* const* out) {
  const __m256i mask = first_lanes(count);
  // Every loop over the 8 filters and the K taps of a row has a constant trip count and is
  // unrolled, so acc[f] is always a register (an index the compiler cannot resolve would keep acc
  // in memory).
  __m256 acc[kFilters];
#pragma GCC unroll 8
  for (index_t f = 0; f < kFilters; ++f) acc[f] = _mm256_set1_ps(bias && f < nf ? bias[f] : 0.0f);
  for (index_t c = 0; c < channels; ++c) {
    const float* taps = rows + c * plane;
    const float* w = packed + c * kK * kK * kFilters;       // [ky][kx][filter]
#pragma GCC unroll 3
    for (index_t ky = 0; ky < kK; ++ky)
#pragma GCC unroll 9
      for (index_t kx = 0; kx < kK; ++kx) {
        const __m256 v = load<kPartial>(taps + ky * pw + tap_column(kx, kStride, odd), mask);
        const float* wk = w + (ky * kK + kx) * kFilters;
#pragma GCC unroll 8
        for (index_t f = 0; f < kFilters; ++f)
          acc[f] = _mm256_fmadd_ps(_mm256_broadcast_ss(wk + f), v, acc[f]);
      }
  }
#pragma GCC unroll 8
  for (index_t f = 0; f < kFilters; ++f) {
    if (f >= nf) continue;                                   // a block's missing filters
    if (kPartial) _mm256_maskstore_ps(out[f], mask, acc[f]);
    else _mm256_storeu_ps(out[f], acc[f]);
  }
}

// The AVX-512 forms' arithmetic, shared by one-row vectors and row pairs (below): acc[f] = bias
// + Σ_c Σ_k w[f][c][k] · the 16 inputs `load` gives for tap k's first input `at`. Only the load
// differs between the two (one row's run, or two rows' runs in the two halves).
template <int kStride, int kK, typename Load>
__attribute__((target("avx512f"), always_inline)) inline void accumulate_avx512(
    const Load& load, const float* rows, index_t plane, index_t pw, index_t odd,
    const float* packed, index_t channels, const float* bias, index_t nf, __m512 acc[kFilters]) {
#pragma GCC unroll 8
  for (index_t f = 0; f < kFilters; ++f) acc[f] = _mm512_set1_ps(bias && f < nf ? bias[f] : 0.0f);
  for (index_t c = 0; c < channels; ++c) {
    const float* taps = rows + c * plane;
    const float* w = packed + c * kK * kK * kFilters;
#pragma GCC unroll 3
    for (index_t ky = 0; ky < kK; ++ky)
#pragma GCC unroll 9
      for (index_t kx = 0; kx < kK; ++kx) {
        const __m512 v = load(taps + ky * pw + tap_column(kx, kStride, odd));
        const float* wk = w + (ky * kK + kx) * kFilters;
#pragma GCC unroll 8
        for (index_t f = 0; f < kFilters; ++f) acc[f] = _mm512_fmadd_ps(_mm512_set1_ps(wk[f]), v, acc[f]);
      }
  }
}

// One row's 16 inputs from `at` (the first `count` of them when kPartial: `mask`).
template <bool kPartial>
struct RowLoad {
  __mmask16 mask;
  __attribute__((target("avx512f"), always_inline)) __m512 operator()(const float* at) const {
    return kPartial ? _mm512_maskz_loadu_ps(mask, at) : _mm512_loadu_ps(at);
  }
};

// The same for sixteen outputs at a time (AVX-512: a register holds 16 floats). Per multiply-add
// it issues half the loads and instructions of the AVX2 form; a row narrower than 16 outputs
// would leave most lanes masked off, so such rows stay on AVX2 or go two to a register
// (forward_row_pair_avx512, below).
template <bool kPartial, int kStride, int kK>
__attribute__((target("avx512f"))) void forward_vector_avx512(
    const float* rows, index_t plane, index_t pw, index_t odd, const float* packed, index_t channels,
    const float* bias, index_t nf, index_t count, float* const* out) {
  const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1);   // the first `count` lanes
  __m512 acc[kFilters];
  accumulate_avx512<kStride, kK>(RowLoad<kPartial>{mask}, rows, plane, pw, odd, packed, channels,
                                 bias, nf, acc);
#pragma GCC unroll 8
  for (index_t f = 0; f < kFilters; ++f) {
    if (f >= nf) continue;
    if (kPartial) _mm512_mask_storeu_ps(out[f], mask, acc[f]);
    else _mm512_storeu_ps(out[f], acc[f]);
  }
}

// The vector function signature both forms share: `count` outputs (1 … lanes) of 8 filters.
using ForwardVector = void (*)(const float* rows, index_t plane, index_t pw, index_t odd,
                               const float* packed, index_t channels, const float* bias, index_t nf,
                               index_t count, float* const* out);

// The vector functions of one instruction set and stride: for full vectors, for the partial last one.
using VectorPair = std::pair<ForwardVector, ForwardVector>;
template <int kStride, int kK>
VectorPair forward_vectors(bool avx512) {
  if (avx512)
    return {forward_vector_avx512<false, kStride, kK>, forward_vector_avx512<true, kStride, kK>};
  return {forward_vector_avx2<false, kStride, kK>, forward_vector_avx2<true, kStride, kK>};
}

template <int kK>
VectorPair forward_vectors(index_t stride, bool avx512) {
  return stride == 1 ? forward_vectors<1, kK>(avx512) : forward_vectors<2, kK>(avx512);
}

// The vector functions for the geometry's K (each compiled size is its own code, its tap loops
// unrolled; checked_direct_conv_geometry admits only these four).
VectorPair forward_vectors_for(const DirectConvGeometry& g, bool avx512) {
  switch (g.kernel) {
    case 3: return forward_vectors<3>(g.stride, avx512);
    case 5: return forward_vectors<5>(g.stride, avx512);
    case 7: return forward_vectors<7>(g.stride, avx512);
    default: return forward_vectors<9>(g.stride, avx512);
  }
}

// The weights of each block of 8 filters packed as [block][c][k][filter], zeros past the last
// filter: the 8 values one tap needs are adjacent.
std::vector<float> packed_forward_weights(const float* w, const DirectConvGeometry& g) {
  const index_t blocks = (g.filters + kFilters - 1) / kFilters, taps = g.kernel * g.kernel;
  std::vector<float> packed(blocks * g.channels * taps * kFilters, 0.0f);
  for (index_t f = 0; f < g.filters; ++f)
    for (index_t c = 0; c < g.channels; ++c)
      for (index_t k = 0; k < taps; ++k)
        packed[((f / kFilters * g.channels + c) * taps + k) * kFilters + f % kFilters] =
            w[(f * g.channels + c) * taps + k];
  return packed;
}

// The forward's tasks (work-shared among the region's threads): one output row of one image for a
// block of 8 filters, cut into vectors of `lanes` outputs (full ones, then a partial one) computed
// by `full_vector` / `partial_vector`.
void forward_rows(const float* padded, const float* packed, const float* bias, const DirectConvGeometry& g,
                  index_t lanes, ForwardVector full_vector, ForwardVector partial_vector, float* y) {
  const index_t ph = g.height + 2 * g.pad_h, pw = g.width + 2 * g.pad_w, plane = ph * pw;
  const index_t odd = odd_columns_start(pw), blocks = (g.filters + kFilters - 1) / kFilters;
  const index_t tasks = g.batch * blocks * g.out_h;
#pragma omp for schedule(static)
  for (index_t t = 0; t < tasks; ++t) {
    // The filter blocks of one output row are neighbouring tasks: they read the same K input rows
    // of every channel, which then come from cache even where a whole image does not fit in it.
    const index_t b = t % blocks, oy = t / blocks % g.out_h, n = t / (blocks * g.out_h);
    const index_t f0 = b * kFilters, nf = std::min(kFilters, g.filters - f0);
    const float* rows = padded + n * g.channels * plane + g.stride * oy * pw;   // channel 0's first
    const float* wb = packed + b * g.channels * g.kernel * g.kernel * kFilters;
    const float* bb = bias ? bias + f0 : nullptr;
    for (index_t ox = 0; ox < g.out_w; ox += lanes) {
      const index_t count = std::min(lanes, g.out_w - ox);
      float* at[kFilters];
      for (index_t f = 0; f < nf; ++f) at[f] = y + ((n * g.filters + f0 + f) * g.out_h + oy) * g.out_w + ox;
      if (count == lanes)
        full_vector(rows + ox, plane, pw, odd, wb, g.channels, bb, nf, count, at);
      else   // the row's last, partial vector
        partial_vector(rows + ox, plane, pw, odd, wb, g.channels, bb, nf, count, at);
    }
  }
}

// Rows of at most 8 outputs (the FCN's 8×8 layers) would fill half an AVX-512 register and leave
// AVX2's one-row form bound by its loads (8 broadcasts and 1 input load per 8 multiply-adds).
// Here one register holds two neighbouring output rows, oy in lanes 0–7 and oy + 1 in lanes
// 8–15: each input vector is two masked loads (row oy's taps into the low lanes, the taps of row
// oy + 1 — `kStride` padded rows further — into the high ones), and each broadcast weight feeds
// 16 outputs again. The masks also cut rows shorter than 8 and the missing second row of an odd
// out_h (masked-off lanes are neither read nor written, whatever address their lane position
// would have: for rows narrower than 8 the high lanes' base `at + below` may lie before the
// padded copy, and a missing second row's base past the output). out[f] is row oy of filter f,
// out[kFilters + f] row oy + 1 (or row oy again where there is none: its lanes are masked off).
// Two rows' 8 inputs each from `at` (lanes 0–7, mask `low`) and `at + below` (lanes 8–15, `high`).
struct RowPairLoad {
  __mmask16 low, high;
  index_t below;
  __attribute__((target("avx512f"), always_inline)) __m512 operator()(const float* at) const {
    return _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(low, at), high, at + below);
  }
};

template <int kStride, int kK>
__attribute__((target("avx512f"))) void forward_row_pair_avx512(
    const float* rows, index_t plane, index_t pw, index_t odd, const float* packed, index_t channels,
    const float* bias, index_t nf, __mmask16 low, __mmask16 high, float* const* out) {
  const index_t below = kStride * pw - 8;   // lane 8 + i of the second row reads from here + 8 + i
  __m512 acc[kFilters];
  accumulate_avx512<kStride, kK>(RowPairLoad{low, high, below}, rows, plane, pw, odd, packed,
                                 channels, bias, nf, acc);
#pragma GCC unroll 8
  for (index_t f = 0; f < kFilters; ++f) {
    if (f >= nf) continue;
    _mm512_mask_storeu_ps(out[f], low, acc[f]);
    _mm512_mask_storeu_ps(out[kFilters + f] - 8, high, acc[f]);
  }
}

using RowPairVector = void (*)(const float* rows, index_t plane, index_t pw, index_t odd,
                               const float* packed, index_t channels, const float* bias, index_t nf,
                               __mmask16 low, __mmask16 high, float* const* out);

template <int kK>
RowPairVector row_pair_vector(index_t stride) {
  return stride == 1 ? forward_row_pair_avx512<1, kK> : forward_row_pair_avx512<2, kK>;
}

RowPairVector row_pair_vector_for(const DirectConvGeometry& g) {
  switch (g.kernel) {
    case 3: return row_pair_vector<3>(g.stride);
    case 5: return row_pair_vector<5>(g.stride);
    case 7: return row_pair_vector<7>(g.stride);
    default: return row_pair_vector<9>(g.stride);
  }
}

// forward_rows for rows of at most 8 outputs on AVX-512: a task is two output rows (oy, oy + 1)
// of one image for a block of 8 filters, one forward_row_pair_avx512 call.
void forward_row_pairs(const float* padded, const float* packed, const float* bias,
                       const DirectConvGeometry& g, RowPairVector pair, float* y) {
  const index_t ph = g.height + 2 * g.pad_h, pw = g.width + 2 * g.pad_w, plane = ph * pw;
  const index_t odd = odd_columns_start(pw), blocks = (g.filters + kFilters - 1) / kFilters;
  const index_t pairs = (g.out_h + 1) / 2, tasks = g.batch * blocks * pairs;
  const __mmask16 low = static_cast<__mmask16>((1u << g.out_w) - 1);   // out_w ≤ 8 lanes
#pragma omp for schedule(static)
  for (index_t t = 0; t < tasks; ++t) {
    const index_t b = t % blocks, oy = 2 * (t / blocks % pairs), n = t / (blocks * pairs);
    const bool second = oy + 1 < g.out_h;
    const index_t f0 = b * kFilters, nf = std::min(kFilters, g.filters - f0);
    float* at[2 * kFilters];
    for (index_t f = 0; f < nf; ++f) {
      at[f] = y + ((n * g.filters + f0 + f) * g.out_h + oy) * g.out_w;
      at[kFilters + f] = second ? at[f] + g.out_w : at[f] + 8;   // (+ 8: the store subtracts it)
    }
    pair(padded + n * g.channels * plane + g.stride * oy * pw, plane, pw, odd,
         packed + b * g.channels * g.kernel * g.kernel * kFilters, g.channels,
         bias ? bias + f0 : nullptr, nf, low, second ? static_cast<__mmask16>(low << 8) : 0, at);
  }
}

// dy rearranged for the weight gradient: for each block of kF filters, image, output row and
// 8-wide vector of that row, the kF filters' vectors side by side — [block][n][oy][vector][f][8
// lanes], zeros past out_w and past the last filter. A task then reads its filters' dy as one
// run of memory, at fixed offsets (f · 8 floats) from one pointer; reading the kF planes of dy
// in place took kF row pointers, which the compiler rebuilt for every output row — as many
// instructions as the arithmetic where a row is one vector (the FCN's 8 × 8 layer).
template <index_t kF>
void pack_weight_grad_dy(const float* dy, const DirectConvGeometry& g, float* packed) {
  const index_t blocks = (g.filters + kF - 1) / kF, vectors = (g.out_w + kLanes - 1) / kLanes;
  const index_t rows = blocks * g.batch * g.out_h;
#pragma omp for schedule(static)
  for (index_t r = 0; r < rows; ++r) {
    const index_t oy = r % g.out_h, n = r / g.out_h % g.batch, b = r / (g.out_h * g.batch);
    float* out = packed + r * vectors * kF * kLanes;
    for (index_t f = 0; f < kF; ++f) {
      const index_t filter = b * kF + f;
      for (index_t v = 0; v < vectors; ++v) {
        float* vector = out + (v * kF + f) * kLanes;
        // the row's values in this vector (none for a missing filter), then zeros
        const index_t count = filter < g.filters ? std::min(kLanes, g.out_w - v * kLanes) : 0;
        const float* row = count > 0 ? dy + ((n * g.filters + filter) * g.out_h + oy) * g.out_w +
                                           v * kLanes : nullptr;
        if (count == kLanes) {     // a whole vector: a copy of a constant size is one vector
          std::memcpy(vector, row, sizeof(float) * kLanes);     // move (std::copy of a runtime
          continue;                                             // count is a call to memmove)
        }
        std::copy(row, row + count, vector);
        std::fill(vector + count, vector + kLanes, 0.0f);
      }
    }
  }
}

// acc[f][j] += dy[f] vector · (the inputs tap kx0 + j saw) for kF filters and kC ≤ 3 taps of one
// input row: the tap's inputs start at x + column[j] (tap_column: x + kx for stride 1, in the
// de-interleaved row for stride 2); the filters' dy vectors are d + f · 8 (pack_weight_grad_dy).
// A partial vector masks its input loads (its dy lanes past the row are packed zeros).
template <index_t kF, index_t kC, bool kPartial>
__attribute__((target("avx2,fma"), always_inline)) inline void weight_grad_vector(
    const float* x, const index_t* column, const float* d, __m256i mask, __m256 acc[][3]) {
  __m256 xv[kC];
#pragma GCC unroll 3
  for (index_t j = 0; j < kC; ++j) xv[j] = load<kPartial>(x + column[j], mask);
#pragma GCC unroll 8
  for (index_t f = 0; f < kF; ++f) {
    const __m256 dv = _mm256_loadu_ps(d + f * kLanes);
#pragma GCC unroll 3
    for (index_t j = 0; j < kC; ++j) acc[f][j] = _mm256_fmadd_ps(dv, xv[j], acc[f][j]);
  }
}

// One image's pass over its output rows for kC taps of kernel row ky: x is the padded input row
// ky (of the task's channel), d the image's first packed dy vector. kTail: the rows end in a
// partial vector (out_w not a multiple of 8). Rows without one are compiled apart: there the
// mask is never live, and with AVX-512's registers all 8 × 3 sums stay in registers (with the
// mask live, GCC kept one sum on the stack — a load and a store per vector).
template <index_t kF, index_t kC, bool kTail>
__attribute__((target("avx2,fma"), always_inline)) inline void weight_grad_rows(
    const float* x, const float* d, const index_t* column, const DirectConvGeometry& g,
    index_t pw, __m256i mask, __m256 acc[][3]) {
  const index_t full = g.out_w / kLanes * kLanes;
  for (index_t oy = 0; oy < g.out_h; ++oy, x += g.stride * pw) {
    for (index_t ox = 0; ox < full; ox += kLanes, d += kF * kLanes)
      weight_grad_vector<kF, kC, false>(x + ox, column, d, mask, acc);
    if (kTail) {
      weight_grad_vector<kF, kC, true>(x + full, column, d, mask, acc);
      d += kF * kLanes;
    }
  }
}

// dW for the tasks (input channel c, a block of kF filters), work-shared over the threads of the
// caller's region: each task sums dy[f] · shifted input rows over the batch and all rows into
// kF × K² vectors, then adds their lanes. The taps of a kernel row go three at a time (K = 3: all
// of them; 5 = 3 + 2, 7 = 3 + 3 + 1, 9 = 3 × 3), and kF × 3 accumulators live in registers:
// 4 filters (12 registers) fit AVX2's 16; with AVX-512's 32 registers (the same 8-float
// instructions, VL encoded) 8 filters fit (24), and each loaded input vector serves twice as
// many FMAs.
template <index_t kF, int kK, bool kTail>
__attribute__((target("avx2,fma"), always_inline)) inline void weight_grad_tasks(
    const float* padded, const float* packed_dy, const DirectConvGeometry& g, float* dW) {
  const index_t ph = g.height + 2 * g.pad_h, pw = g.width + 2 * g.pad_w, plane = ph * pw;
  const index_t odd = odd_columns_start(pw);
  const index_t blocks = (g.filters + kF - 1) / kF, tasks = blocks * g.channels;
  const index_t rest = g.out_w % kLanes, vectors = (g.out_w + kLanes - 1) / kLanes;
  const index_t image_block = g.out_h * vectors * kF * kLanes;   // one image's packed dy
  const __m256i mask = first_lanes(rest > 0 ? rest : kLanes);
#pragma omp for schedule(static)
  for (index_t t = 0; t < tasks; ++t) {
    const index_t c = t % g.channels, b = t / g.channels, f0 = b * kF;
    const index_t nf = std::min(kF, g.filters - f0);
    // The sums of all K × K taps, kept between images: one image's dy block is read for the
    // kernel rows ky = 0 … K − 1 in turn while it is still in L1, instead of streaming the whole
    // batch's dy K times from L2/L3 (VGG16's conv1_2 at batch 4: 0.89x the time).
    __m256 sums[kK][kF][kK];
    for (index_t ky = 0; ky < kK; ++ky)
      for (index_t f = 0; f < kF; ++f)
        for (index_t kx = 0; kx < kK; ++kx) sums[ky][f][kx] = _mm256_setzero_ps();
    for (index_t n = 0; n < g.batch; ++n) {
      for (index_t ky = 0; ky < kK; ++ky) {
        // Unrolled (at most 3 chunks), so that each chunk's `taps` is a constant and its acc
        // array lives in registers (a runtime count would keep acc in memory: 1.2x the time).
#pragma GCC unroll 3
        for (index_t kx0 = 0; kx0 < kK; kx0 += 3) {          // taps kx0 … kx0 + taps − 1
          const index_t taps = std::min<index_t>(3, kK - kx0);
          index_t column[3];
          for (index_t j = 0; j < taps; ++j) column[j] = tap_column(kx0 + j, g.stride, odd);
          __m256 acc[kF][3];
#pragma GCC unroll 8
          for (index_t f = 0; f < kF; ++f)
#pragma GCC unroll 3
            for (index_t j = 0; j < taps; ++j) acc[f][j] = sums[ky][f][kx0 + j];
          const float* x = padded + (n * g.channels + c) * plane + ky * pw;
          const float* d = packed_dy + (b * g.batch + n) * image_block;
          if (taps == 3)
            weight_grad_rows<kF, 3, kTail>(x, d, column, g, pw, mask, acc);
          else if (taps == 2)
            weight_grad_rows<kF, 2, kTail>(x, d, column, g, pw, mask, acc);
          else
            weight_grad_rows<kF, 1, kTail>(x, d, column, g, pw, mask, acc);
#pragma GCC unroll 8
          for (index_t f = 0; f < kF; ++f)
#pragma GCC unroll 3
            for (index_t j = 0; j < taps; ++j) sums[ky][f][kx0 + j] = acc[f][j];
        }
      }
    }
    for (index_t ky = 0; ky < kK; ++ky)
      for (index_t f = 0; f < nf; ++f)
        for (index_t kx = 0; kx < kK; ++kx)
          dW[((f0 + f) * g.channels + c) * kK * kK + ky * kK + kx] = lane_sum(sums[ky][f][kx]);
  }
}

// The tasks of rows with or without a partial last vector.
template <index_t kF, int kK>
__attribute__((target("avx2,fma"), always_inline)) inline void weight_grad_tasks_for(
    bool tail, const float* padded, const float* dy, const DirectConvGeometry& g, float* dW) {
  if (tail)
    weight_grad_tasks<kF, kK, true>(padded, dy, g, dW);
  else
    weight_grad_tasks<kF, kK, false>(padded, dy, g, dW);
}

// The tasks of each compiled K (a switch, not a template call through a lambda: a lambda would
// not inherit this function's target instructions).
template <index_t kF>
__attribute__((target("avx2,fma"), always_inline)) inline void weight_grad_any_kernel(
    const float* padded, const float* dy, const DirectConvGeometry& g, float* packed_dy, float* dW) {
  pack_weight_grad_dy<kF>(dy, g, packed_dy);            // (its loop's barrier ends the packing)
  const bool tail = g.out_w % kLanes != 0;
  switch (g.kernel) {
    case 3: weight_grad_tasks_for<kF, 3>(tail, padded, packed_dy, g, dW); break;
    case 5: weight_grad_tasks_for<kF, 5>(tail, padded, packed_dy, g, dW); break;
    case 7: weight_grad_tasks_for<kF, 7>(tail, padded, packed_dy, g, dW); break;
    default: weight_grad_tasks_for<kF, 9>(tail, padded, packed_dy, g, dW); break;
  }
}

// The packed dy's length (pack_weight_grad_dy) for blocks of kF filters.
index_t packed_weight_grad_dy_size(const DirectConvGeometry& g, index_t kF) {
  const index_t blocks = (g.filters + kF - 1) / kF, vectors = (g.out_w + kLanes - 1) / kLanes;
  return blocks * g.batch * g.out_h * vectors * kF * kLanes;
}

__attribute__((target("avx2,fma"))) void weight_grad_avx2(const float* padded, const float* dy,
                                                          const DirectConvGeometry& g,
                                                          float* packed_dy, float* dW) {
  weight_grad_any_kernel<kGradFilters>(padded, dy, g, packed_dy, dW);
}

__attribute__((target("avx2,fma,avx512f,avx512vl"))) void weight_grad_avx512vl(
    const float* padded, const float* dy, const DirectConvGeometry& g, float* packed_dy, float* dW) {
  weight_grad_any_kernel<2 * kGradFilters>(padded, dy, g, packed_dy, dW);
}
#endif  // MINIDL_DIRECT_CONV_AVX2

}  // namespace

bool direct_conv_cpu_fast_available() {
#ifdef MINIDL_DIRECT_CONV_AVX2
  return cpu_has_avx2_fma();
#else
  return false;
#endif
}

index_t direct_conv_cpu_fast_lanes() {
#ifdef MINIDL_DIRECT_CONV_AVX2
  if (cpu_has_avx512() && allowed_lanes.load() >= 16) return 16;
  return cpu_has_avx2_fma() ? 8 : 1;
#else
  return 1;
#endif
}

index_t direct_conv_cpu_fast_set_lanes(index_t lanes) { return allowed_lanes.exchange(lanes); }

template <typename T>
void direct_conv_cpu_fast(const T* x, const T* w, const T* bias, const DirectConvGeometry& g,
                          T* padded, T* y) {
  (void)padded;
  direct_conv_cpu(x, w, bias, g, y);             // float64: the textbook loop
}

template <typename T>
void direct_conv_weight_grad_cpu_fast(const T* x, const T* dy, const DirectConvGeometry& g,
                                      T* padded, T* dW) {
  (void)padded;
  direct_conv_weight_grad_cpu(x, dy, g, dW);
}

template <>
void direct_conv_cpu_fast<float>(const float* x, const float* w, const float* bias,
                                 const DirectConvGeometry& g, float* padded, float* y) {
#ifdef MINIDL_DIRECT_CONV_AVX2
  if (cpu_has_avx2_fma()) {
    if (g.batch * g.filters * g.out_h * g.out_w == 0) return;
    const bool avx512 = direct_conv_cpu_fast_lanes() == 16;
    const bool wide = avx512 && g.out_w >= 16;               // else mostly masked lanes
    const bool row_pairs = avx512 && g.out_w <= 8;           // two rows in one register
    const VectorPair vectors = forward_vectors_for(g, wide);
    const std::vector<float> packed = packed_forward_weights(w, g);
    const index_t blocks = (g.filters + kFilters - 1) / kFilters;        // tasks: N · blocks · out_h
#pragma omp parallel if (g.batch * blocks * g.out_h * g.channels * g.out_w > (index_t(1) << 15))
    {
      pad_input(x, g, padded);
      if (row_pairs)
        forward_row_pairs(padded, packed.data(), bias, g, row_pair_vector_for(g), y);
      else
        forward_rows(padded, packed.data(), bias, g, wide ? 16 : 8, vectors.first, vectors.second, y);
    }
    return;
  }
#endif
  (void)padded;
  direct_conv_cpu(x, w, bias, g, y);
}

template <>
void direct_conv_weight_grad_cpu_fast<float>(const float* x, const float* dy,
                                             const DirectConvGeometry& g, float* padded,
                                             float* dW) {
#ifdef MINIDL_DIRECT_CONV_AVX2
  if (cpu_has_avx2_fma()) {
    if (g.filters * g.channels == 0) return;
    const index_t blocks = (g.filters + kGradFilters - 1) / kGradFilters;
    // AVX-512's 32 registers hold 8 filters' sums (direct_conv_set_lanes(8) keeps AVX2's 4):
    // 0.89-0.93x the time at the FCN's 32- and 64-channel layers and VGG16's conv1_2 at batch 4.
    // Not for 4 filters or fewer: the packed dy of a block holds kF filters, zeros for the
    // missing ones, and the style network's 16 -> 3 9×9 layer read 8/3 of its dy (+15 %).
    const bool registers32 = direct_conv_cpu_fast_lanes() == 16 && cpu_has_avx512vl() &&
                             g.filters > kGradFilters;
    // (uninitialized: pack_weight_grad_dy writes every value)
    std::unique_ptr<float[]> packed_dy(
        new float[packed_weight_grad_dy_size(g, registers32 ? 2 * kGradFilters : kGradFilters)]);
#pragma omp parallel if (blocks * g.channels * g.batch * g.out_h * g.out_w > (index_t(1) << 15))
    {
      pad_input</*kWait=*/false>(x, g, padded);             // (pack_weight_grad_dy's barrier)
      if (registers32)
        weight_grad_avx512vl(padded, dy, g, packed_dy.get(), dW);
      else
        weight_grad_avx2(padded, dy, g, packed_dy.get(), dW);
    }
    return;
  }
#endif
  (void)padded;
  direct_conv_weight_grad_cpu(x, dy, g, dW);
}

template void direct_conv_cpu_fast<double>(const double*, const double*, const double*,
                                           const DirectConvGeometry&, double*, double*);
template void direct_conv_weight_grad_cpu_fast<double>(const double*, const double*,
                                                       const DirectConvGeometry&, double*, double*);

}  // namespace minidl
