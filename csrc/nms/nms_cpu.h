// nms_cpu.h — the CPU launcher's declaration (see nms.h for what it computes).
#pragma once
#include "../common/host_device.h"

namespace minidl {
// boxes (n, 4) and scores (n,) C-contiguous; labels (n,) or nullptr (one class).
// Writes the kept indices, in decreasing score order, to keep[0 .. return value).
template <typename T>
index_t nms_cpu(const T* boxes, const T* scores, const index_t* labels, index_t n,
                double iou_threshold, index_t* keep);
}  // namespace minidl
