// bind_cuda.cpp — the pybind11 module minidl._C_cuda, assembled from each kernel family's binding.
//
// Compiled by g++ (nvcc never sees pybind11): the launchers' API is plain C++ — device
// pointers as integers (cupy_array.data.ptr), shapes as ints, the CuPy stream as an integer.
// The calling convention is _C's with pointers (minidl/kernels/__init__.py): _C_cuda.<op>(
// *pointers, *sizes, *options, dtype_code, stream, deterministic=...) — the same arrays in the
// same order, then the sizes a pointer cannot tell, the same options, the dtype code (0 float32,
// 1 float64) and CuPy's stream; tests/test_binding_contract.py compares the two signatures.
// CuPy owns all GPU memory; this module never allocates any. The arrays' shapes and dtypes are
// checked on the Python side (minidl/kernels/*.py), where the CuPy arrays are visible. What this
// module does see it checks itself before a launch, with the functions the CPU bindings use
// (im2col/im2col_checks.h, common/roi_checks.h, common/checks.h): the sizes and every product
// of them, the hyper-parameters, the dtype code and each pointer's alignment. So a raw call
// with a bad size is the same ValueError as on the CPU, never a launch over a wrapped size.
//
// Each family's binding lives beside its kernel (csrc/<kernel>/<kernel>_bind_cuda.cpp, shared
// helpers in common/bind_cuda.h); this file only assembles the module.
#include "common/bind_cuda.h"

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "minidl's CUDA kernels (static cudart; import works without a GPU).";
  bind_index_add_cuda(m);
  bind_im2col_cuda(m);
  bind_norm_cuda(m);
  bind_nms_cuda(m);
  bind_roi_pool_cuda(m);
  bind_roi_align_cuda(m);
  bind_adaptive_max_pool_cuda(m);
  bind_winograd_cuda(m);
  bind_direct_conv_cuda(m);
  bind_relu_cuda(m);
}
