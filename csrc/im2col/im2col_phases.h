// im2col_phases.h — stride 2 in the fast CPU im2col/col2im: a plane's four phases.
#pragma once

#include "im2col_runs.h"

namespace minidl {

// A stride-2 tap (i, j) reads the pixels (2·oy + a, 2·ox + b) with a = i·dilation_h − pad_h,
// b = j·dilation_w − pad_w: every other row and column. Those pixels are exactly one *phase* of
// the plane — the sub-image of the pixels whose row and column have the parities of a and b (a
// space-to-depth split) — shifted by (floor(a/2), floor(b/2)). So every stride-2 run is a
// stride-1 copy out of one phase: split the plane once (it is in the L1 cache) and each tap
// becomes a contiguous copy instead of a stride-2 gather, and in col2im a contiguous add
// instead of a stride-2 read-modify-write (measured on 64×64 planes: 12 and 7 GB/s strided
// against 20 and 17 GB/s for stride 1). col2im adds each tap's run into its phase and
// interleaves the four phases back into the plane at the end; every pixel lives in one phase
// and still receives its taps in (i, j) order, so the sums stay bit for bit the reference's.
struct PlanePhases {
  index_t rows[2], cols[2];  // phase (p, q) holds the rows y ≡ p and columns x ≡ q (mod 2)
  index_t start[2][2];       // where phase (p, q) begins in a buffer of `total` elements
  index_t total = 0;
  PlanePhases(index_t height, index_t width) {
    for (int p = 0; p < 2; ++p) {
      rows[p] = (height - p + 1) / 2;
      cols[p] = (width - p + 1) / 2;
    }
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 2; ++q) start[p][q] = total, total += rows[p] * cols[q];
  }
};

// Where tap offset `a` (= tap · dilation − pad, possibly negative) lands: its phase parity
// and its shift inside that phase (floor division by 2).
inline void phase_of(index_t a, index_t* parity, index_t* shift) {
  *parity = a & 1;  // two's complement: also right for negative a (-1 -> 1)
  *shift = (a - *parity) / 2;
}

// Copies a plane (height, width) into its phases (kToPhases) or the phases back into the plane.
template <bool kToPhases, typename PlaneT, typename PhasesT>
void move_phases(PlaneT* plane, index_t height, index_t width, const PlanePhases& ph,
                        PhasesT* phases) {
  for (index_t y = 0; y < height; ++y) {
    PlaneT* row = plane + y * width;
    PhasesT* even = phases + ph.start[y & 1][0] + (y >> 1) * ph.cols[0];
    PhasesT* odd = phases + ph.start[y & 1][1] + (y >> 1) * ph.cols[1];
    for (index_t x = 0; x < ph.cols[0]; ++x) {  // ph.cols[1] is cols[0] or cols[0] - 1
      const bool has_odd = x < ph.cols[1];
      if constexpr (kToPhases) {
        even[x] = row[2 * x];
        if (has_odd) odd[x] = row[2 * x + 1];
      } else {
        row[2 * x] = even[x];
        if (has_odd) row[2 * x + 1] = odd[x];
      }
    }
  }
}

// A stride-1 run out of one phase (rows × cols): out[oy][ox] = phase[oy + dy][ox + dx].
template <typename T>
void copy_from_phase(const T* phase, index_t rows, index_t cols, index_t dy, index_t dx,
                            const ConvGeometry& g, T* out) {
  if (g.out_w == cols)  // e.g. 3×3, padding 1, even width: one block copy, as for stride 1
    return copy_shifted_block(phase, rows, cols, dy, dx, g.out_h, out);
  copy_run<T, 1>(phase, rows, cols, dy, dx, 1, 1, g.out_h, g.out_w, out);
}

}  // namespace minidl
