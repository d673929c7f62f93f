// bind_cuda.h — what every family's CUDA binding (csrc/<kernel>/<kernel>_bind_cuda.cpp) shares:
// pybind11, the checks of common/checks.h, the launch limits of cuda_check.h, four helpers, and
// the one function per family that csrc/bind_cuda.cpp calls to register it in minidl._C_cuda.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "common/checks.h"
#include "common/cuda_check.h"  // kMaxLaunchElements (host-only constants; g++ sees cuda_runtime.h)

namespace py = pybind11;
using minidl::index_t;
using ptr_t = std::uintptr_t;

void bind_index_add_cuda(py::module_& m);
void bind_im2col_cuda(py::module_& m);
void bind_norm_cuda(py::module_& m);
void bind_nms_cuda(py::module_& m);
void bind_roi_pool_cuda(py::module_& m);
void bind_roi_align_cuda(py::module_& m);
void bind_adaptive_max_pool_cuda(py::module_& m);
void bind_winograd_cuda(py::module_& m);
void bind_direct_conv_cuda(py::module_& m);
void bind_relu_cuda(py::module_& m);

// dtype_code 0 = float32, 1 = float64 (anything else was read as float64): the element size.
inline index_t element_size(int dtype_code) {
  minidl::check(dtype_code == 0 || dtype_code == 1,
                "dtype_code must be 0 (float32) or 1 (float64), got " + std::to_string(dtype_code));
  return dtype_code == 0 ? 4 : 8;
}

// A device pointer must be aligned for its elements, as the CPU bindings require of NumPy data
// (CuPy's allocations are; a raw pointer at an odd byte offset is not). 0 passes: it is how an
// absent optional array says "none" (norm's weight / bias, nms's labels: kernels.launch's None).
struct DevicePointer {
  ptr_t pointer;
  const char* name;
};
inline void check_pointers(index_t alignment, std::initializer_list<DevicePointer> pointers) {
  for (const DevicePointer& p : pointers)
    minidl::check(p.pointer % static_cast<ptr_t>(alignment) == 0,
                  std::string(p.name) + ": the device pointer is not aligned to " +
                      std::to_string(alignment) + " bytes");
}

// One thread per element: at most kMaxLaunchElements in one launch (cuda_check.h).
inline void check_launch(index_t elements, const std::string& op) {
  minidl::check(elements <= minidl::kMaxLaunchElements,
                op + ": " + std::to_string(elements) + " elements are too many for one launch (at most " +
                    std::to_string(minidl::kMaxLaunchElements) + ")");
}

// norm's (N, C, P) sizes: >= 0, N*C*P in int64 and in one launch, N*C blocks in one grid.
inline void check_norm_sizes(index_t batch, index_t channels, index_t plane, const std::string& op) {
  minidl::check(batch >= 0 && channels >= 0 && plane >= 0,
                op + ": batch, channels and plane must be >= 0");
  check_launch(minidl::checked_product({batch, channels, plane}, op + ": the size of x"), op);
  minidl::check(batch * channels <= minidl::kMaxGridBlocks,
                op + ": batch * channels is too large for one grid");
}
