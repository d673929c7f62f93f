// index_add.h — the per-element body of index_add, shared by the CPU and CUDA launchers.
//
// index_add: out[index[i], j] += src[i, j] for every i, with out of shape (rows, inner) and
// src of shape (n, inner). It is the backward of gathering rows, x[index] (a row picked twice
// receives two gradients). One "element" is one column j: it walks i in order, so the sum
// is deterministic and no two threads ever write the same address (no atomics).
#pragma once

#include "../common/host_device.h"

namespace minidl {

template <typename T>
MINIDL_HD void index_add_column(const index_t* index, index_t n, const T* src, T* out,
                                index_t rows, index_t inner, index_t j) {
  for (index_t i = 0; i < n; ++i) {
    index_t r = index[i];
    if (r < 0) r += rows;                 // negative indices count from the end, as in NumPy
    if (r < 0 || r >= rows) continue;     // bounds guard: the launcher validated, never trust
    out[r * inner + j] += src[i * inner + j];
  }
}

}  // namespace minidl
