// im2col_runs.h — the run copies of the fast CPU im2col/col2im (im2col_cpu_fast.cpp).
//
// One kernel tap (i, j) of one image plane fills a *run* of the column matrix: out_h rows of
// out_w entries, out[oy][ox] = plane[oy·stride + dy][ox·stride + dx] with dy = i·dh − ph,
// dx = j·dw − pw (0 outside the plane). The functions here copy such a run (im2col) or add it
// back (col2im) with the index math hoisted out of the element loop: per row, the columns that
// look into the left/right zero padding are found once (inside_range) and the interior is a
// plain (for stride 1: SIMD) copy — the values im2col_element would return one at a time.
#pragma once

#include <algorithm>

#include "im2col.h"

namespace minidl {

// ceil(a / b) for a >= 0, b >= 1, written without the usual (a + b - 1) / b: a stride may be as
// large as int64 allows (it only has to be >= 1), and a + b - 1 would then overflow.
inline index_t ceil_div(index_t a, index_t b) { return a / b + (a % b != 0); }

// First and one-past-last output coordinate o whose input coordinate o * stride + offset lies
// in [0, size): the interior of a row, where the bounds test can be skipped.
inline void inside_range(index_t offset, index_t stride, index_t size, index_t out_size,
                         index_t* first, index_t* last) {
  const index_t lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
  const index_t hi = size - offset <= 0 ? 0 : ceil_div(size - offset, stride);
  *first = std::min(lo, out_size);
  *last = std::max(*first, std::min(hi, out_size));
}

// One contiguous run of the column matrix, row by row: out[oy][ox] = plane[oy·sh + dy][ox·sw + dx]
// inside the plane (height × width), 0 outside. For im2col's run of tap (i, j), dy = i·dh − ph
// and dx = j·dw − pw; the stride-2 phases call it with stride 1 on a phase. Output columns
// outside [first, last) look into the left/right zero padding and output rows whose input row is
// outside the plane into the top/bottom padding: both are written as zeros directly, so only
// the interior copies read the input (the values im2col_element would return, without its
// per-element index arithmetic and bounds test — rows here are as short as 8 pixels).
// kStride = 1 or 2 fixes sh = sw at compile time (0: read sh, sw).
template <typename T, int kStride>
void copy_run(const T* plane, index_t height, index_t width, index_t dy, index_t dx,
                     index_t sh, index_t sw, index_t out_h, index_t out_w, T* out) {
  if (kStride) sh = sw = kStride;
  index_t first, last;  // the output columns whose pixel is inside the plane's width
  inside_range(dx, sw, width, out_w, &first, &last);
  for (index_t oy = 0; oy < out_h; ++oy, out += out_w) {
    const index_t iy = oy * sh + dy;
    // The whole output row looks into the zero padding: above or below the plane, or no column
    // inside its width. (Then no pointer into the plane is formed either: for an empty plane
    // it may be null, and null + dx is undefined behaviour — UBSan found it at width 0.)
    if (iy < 0 || iy >= height || first == last) {
      for (index_t ox = 0; ox < out_w; ++ox) out[ox] = T(0);
      continue;
    }
    for (index_t ox = 0; ox < first; ++ox) out[ox] = T(0);
    const T* src = plane + iy * width + first * sw + dx;  // the pixel of output column `first`
    for (index_t k = 0; k < last - first; ++k) out[first + k] = src[k * sw];
    for (index_t ox = last; ox < out_w; ++ox) out[ox] = T(0);
  }
}

// The transpose of copy_run: add the run's entries whose pixel lies inside the plane into it.
template <typename T, int kStride>
void add_run(const T* run, index_t dy, index_t dx, index_t sh, index_t sw, index_t out_h,
                    index_t out_w, index_t height, index_t width, T* plane) {
  if (kStride) sh = sw = kStride;
  index_t first, last;
  inside_range(dx, sw, width, out_w, &first, &last);
  if (first == last) return;  // no entry lands inside the width
  for (index_t oy = 0; oy < out_h; ++oy, run += out_w) {
    const index_t iy = oy * sh + dy;
    if (iy < 0 || iy >= height) continue;  // this output row saw only zero padding
    T* dst = plane + iy * width + first * sw + dx;
    for (index_t k = 0; k < last - first; ++k) dst[k * sw] += run[first + k];
  }
}

// The same run for stride 1 when the output rows are as long as the input rows (out_w == width:
// "same" convolutions such as 3×3 with padding 1). Then consecutive output pixels read
// consecutive input pixels *across* row ends too, so the inside of the whole block is ONE
// contiguous copy of the input plane (shifted by the tap's offset); the pixels that wrapped
// around a row end belong to the zero padding and are overwritten with zeros afterwards.
// `plane` is (height, width), the run (out_h, width), out[oy][ox] = plane[oy + dy][ox + dx].
template <typename T>
void copy_shifted_block(const T* plane, index_t height, index_t width, index_t dy,
                               index_t dx, index_t out_h, T* out) {
  const index_t plane_size = height * width;
  // Output rows [oy0, oy1) look into input rows inside the image.
  const index_t oy0 = std::min(std::max<index_t>(-dy, 0), out_h);
  const index_t oy1 = std::max(oy0, std::min(height - dy, out_h));
  // Output element q = oy * width + ox reads plane[q + shift]; copy the q of rows [oy0, oy1)
  // whose source lies inside the plane: oy0 * width <= q0 <= q1 <= oy1 * width.
  const index_t shift = dy * width + dx;
  const index_t q0 = std::min(std::max(oy0 * width, -shift), oy1 * width);
  const index_t q1 = std::max(q0, std::min(oy1 * width, plane_size - shift));
  std::fill(out, out + q0, T(0));
  if (q1 > q0) std::copy(plane + q0 + shift, plane + q1 + shift, out + q0);  // (plane may be null)
  std::fill(out + q1, out + out_h * width, T(0));
  // Re-zero the columns of each row that wrapped around a row end: column by column, since a
  // 3×3 tap wraps one column only (a std::fill per row would be one call per 1-element run).
  index_t first, last;  // the columns of a row that are inside the image width
  inside_range(dx, 1, width, width, &first, &last);
  auto zero_column = [&](index_t col) {
    for (index_t oy = oy0; oy < oy1; ++oy) out[oy * width + col] = T(0);
  };
  for (index_t col = 0; col < first; ++col) zero_column(col);
  for (index_t col = last; col < width; ++col) zero_column(col);
}

}  // namespace minidl
