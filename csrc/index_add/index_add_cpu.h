// index_add_cpu.h — the CPU launcher's declaration (see index_add.h for what it computes).
#pragma once
#include "../common/host_device.h"

namespace minidl {
template <typename T>
void index_add_cpu(const index_t* index, index_t n, const T* src, T* out, index_t rows,
                   index_t inner);
}  // namespace minidl
