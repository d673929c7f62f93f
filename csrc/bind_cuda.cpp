// bind_cuda.cpp — the pybind11 module minidl._C_cuda: every CUDA launcher, one section per family.
//
// Compiled by g++ (nvcc never sees pybind11): the launchers' API is plain C++ — device
// pointers as integers (cupy_array.data.ptr), shapes as ints, the CuPy stream as an integer.
// CuPy owns all GPU memory; this module never allocates any. Shapes and dtypes are checked
// on the Python side (minidl/kernels/*.py) where the CuPy arrays are visible.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "im2col/im2col_cuda.h"
#include "index_add/index_add_cuda.h"
#include "nms/nms_cuda.h"
#include "norm/norm_cuda.h"
#include "roi_align/roi_align_cuda.h"
#include "roi_pool/roi_pool_cuda.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "minidl's CUDA kernels (static cudart; import works without a GPU).";
  m.def("index_add", &minidl::index_add_cuda, py::arg("index"), py::arg("n"), py::arg("src"),
        py::arg("out"), py::arg("rows"), py::arg("inner"), py::arg("dtype_code"),
        py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  m.def("im2col", &minidl::im2col_cuda, py::arg("x"), py::arg("cols"), py::arg("batch"),
        py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("kernel_h"),
        py::arg("kernel_w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"),
        py::arg("pad_w"), py::arg("dilation_h"), py::arg("dilation_w"), py::arg("dtype_code"),
        py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  m.def("col2im", &minidl::col2im_cuda, py::arg("cols"), py::arg("x"), py::arg("batch"),
        py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("kernel_h"),
        py::arg("kernel_w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"),
        py::arg("pad_w"), py::arg("dilation_h"), py::arg("dilation_w"), py::arg("dtype_code"),
        py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  // normalization (csrc/norm/); minidl/kernels/norm.py
  m.def("norm_statistics", &minidl::norm_statistics_cuda, py::arg("x"), py::arg("batch"),
        py::arg("channels"), py::arg("plane"), py::arg("per_instance"), py::arg("mean"),
        py::arg("var"), py::arg("dtype_code"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def("norm_forward", &minidl::norm_forward_cuda, py::arg("x"), py::arg("batch"),
        py::arg("channels"), py::arg("plane"), py::arg("per_instance"), py::arg("mean"),
        py::arg("var"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("out"),
        py::arg("dtype_code"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  m.def("norm_backward_sums", &minidl::norm_backward_sums_cuda, py::arg("dy"), py::arg("x"),
        py::arg("batch"), py::arg("channels"), py::arg("plane"), py::arg("per_instance"),
        py::arg("mean"), py::arg("var"), py::arg("eps"), py::arg("sum_dy"),
        py::arg("sum_dy_xhat"), py::arg("dtype_code"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def("norm_backward_input", &minidl::norm_backward_input_cuda, py::arg("dy"), py::arg("x"),
        py::arg("batch"), py::arg("channels"), py::arg("plane"), py::arg("per_instance"),
        py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("eps"), py::arg("sum_dy"),
        py::arg("sum_dy_xhat"), py::arg("input_stats"), py::arg("dx"), py::arg("dtype_code"),
        py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  // detection (csrc/nms/, csrc/roi_pool/, csrc/roi_align/); minidl/kernels/{nms,roi_pool,roi_align}.py
  m.def("nms_mask", &minidl::nms_mask_cuda, py::arg("x1"), py::arg("y1"), py::arg("x2"),
        py::arg("y2"), py::arg("area"), py::arg("label"), py::arg("n"), py::arg("iou_threshold"),
        py::arg("dtype_code"), py::arg("mask"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def("nms_keep", &minidl::nms_keep_cuda, py::arg("mask"), py::arg("n"), py::arg("removed"),
        py::arg("keep"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  m.def("roi_pool_forward", &minidl::roi_pool_forward_cuda, py::arg("input"), py::arg("batch"),
        py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("rois"),
        py::arg("num_rois"), py::arg("spatial_scale"), py::arg("pooled_h"), py::arg("pooled_w"),
        py::arg("output"), py::arg("argmax"), py::arg("dtype_code"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def("roi_pool_backward", &minidl::roi_pool_backward_cuda, py::arg("grad_output"),
        py::arg("argmax"), py::arg("rois"), py::arg("num_rois"), py::arg("batch"),
        py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("pooled_h"),
        py::arg("pooled_w"), py::arg("grad_input"), py::arg("deterministic"),
        py::arg("dtype_code"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  m.def("roi_align_forward", &minidl::roi_align_forward_cuda, py::arg("input"), py::arg("batch"),
        py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("rois"),
        py::arg("num_rois"), py::arg("spatial_scale"), py::arg("pooled_h"), py::arg("pooled_w"),
        py::arg("sampling_ratio"), py::arg("aligned"), py::arg("output"), py::arg("dtype_code"),
        py::arg("stream"), py::call_guard<py::gil_scoped_release>());
  m.def("roi_align_backward", &minidl::roi_align_backward_cuda, py::arg("grad_output"),
        py::arg("rois"), py::arg("num_rois"), py::arg("batch"), py::arg("channels"),
        py::arg("height"), py::arg("width"), py::arg("spatial_scale"), py::arg("pooled_h"),
        py::arg("pooled_w"), py::arg("sampling_ratio"), py::arg("aligned"),
        py::arg("grad_input"), py::arg("deterministic"), py::arg("dtype_code"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
}
