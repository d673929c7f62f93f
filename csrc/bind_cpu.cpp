// bind_cpu.cpp — the pybind11 module minidl._C, assembled from each kernel family's binding.
//
// The calling convention, shared with minidl._C_cuda (minidl/kernels/__init__.py, whose launch()
// is the one caller): _C.<op>(*arrays, *options, fast=...) — the op's inputs, then its outputs,
// every output allocated by the caller (zeroed where the kernel adds into it) and checked before
// any write — output_of (dtype, shape, contiguity, alignment, writeable) for the pooling, RoI and
// nms outputs, the family's own checks for im2col's columns, norm's and index_add's arrays —
// then the hyper-parameters; `fast` picks the CPU form where a family has two. No binding
// allocates an array.
//
// Each binding checks dtype, alignment, contiguity, shapes, index ranges and every size it
// derives (in checked arithmetic: common/checks.h) *before* it touches memory — a bad call
// raises ValueError/TypeError naming the argument, never crashes — then releases the GIL and
// runs the OpenMP launcher. float32 and float64 overloads: a float64 gradcheck is never downcast.
//
// Each family's binding lives beside its kernel (csrc/<kernel>/<kernel>_bind_cpu.cpp, shared
// helpers in common/bind_cpu.h); this file only assembles the module.
#include "common/bind_cpu.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "minidl's C++ (OpenMP) kernels; see csrc/<kernel>/ and minidl/kernels/.";
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  bind_norm_cpu(m);
  bind_index_add_cpu(m);
  bind_im2col_cpu(m);
  bind_nms_cpu(m);                    // detection: see minidl/ops/ for the conventions
  bind_roi_pool_cpu(m);
  bind_roi_align_cpu(m);
  bind_adaptive_max_pool_cpu(m);
  bind_winograd_cpu(m);
  bind_direct_conv_cpu(m);
  bind_relu_cpu(m);
}
