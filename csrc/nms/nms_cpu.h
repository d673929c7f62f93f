// nms_cpu.h — the CPU launchers' declarations (see nms.h for what they compute).
#pragma once
#include "../common/host_device.h"

namespace minidl {
// boxes (n, 4) and scores (n,) C-contiguous; labels (n,) or nullptr (one class).
// Writes the kept indices, in decreasing score order, to keep[0 .. return value).

// The textbook form (nms_cpu.cpp): every suppression word by the body of nms.h, then the walk
// over the rows — the two CUDA kernels' steps, as loops. Memory: n * ceil(n/64) words.
template <typename T>
index_t nms_cpu(const T* boxes, const T* scores, const index_t* labels, index_t n,
                double iou_threshold, index_t* keep);

// The fast form (nms_cpu_fast.cpp), the same arguments and result: only the words of kept rows
// are computed, while the walk goes. minidl._C runs it unless fast=False.
template <typename T>
index_t nms_cpu_fast(const T* boxes, const T* scores, const index_t* labels, index_t n,
                     double iou_threshold, index_t* keep);
}  // namespace minidl
