// nms_cuda.h — the CUDA launchers' plain C++ API: device pointers and the stream as integers.
// nvcc compiles the .cu; the pybind11 binding includes only this header. CuPy allocates every
// buffer (minidl/kernels/nms.py), sorts the boxes and gathers them into the sorted arrays.
#pragma once
#include <cstdint>

namespace minidl {
// Fill mask (n, words) with the suppression words of the sorted boxes (x1, y1, x2, y2, area:
// n values of the dtype; label: n int64, or 0 for one class). Only words with column block >= row block are
// written (the keep pass reads no others). dtype_code: 0 = float32, 1 = float64.
void nms_mask_cuda(std::uintptr_t x1, std::uintptr_t y1, std::uintptr_t x2, std::uintptr_t y2,
                   std::uintptr_t area, std::uintptr_t label, std::int64_t n, double iou_threshold,
                   int dtype_code, std::uintptr_t mask, std::uintptr_t stream);

// The greedy walk over the rows, on the device: keep[i] (uint8, n) = 1 when sorted box i is
// kept. removed: a zeroed scratch of ceil(n/64) uint64 words.
void nms_keep_cuda(std::uintptr_t mask, std::int64_t n, std::uintptr_t removed, std::uintptr_t keep,
                   std::uintptr_t stream);
}  // namespace minidl
