// bind_cuda.cpp — the pybind11 module minidl._C_cuda: every CUDA launcher, one section per family.
//
// Compiled by g++ (nvcc never sees pybind11): the launchers' API is plain C++ — device
// pointers as integers (cupy_array.data.ptr), shapes as ints, the CuPy stream as an integer.
// CuPy owns all GPU memory; this module never allocates any. The arrays' shapes and dtypes are
// checked on the Python side (minidl/kernels/*.py), where the CuPy arrays are visible. What this
// module does see it checks itself before a launch, with the functions the CPU bindings use
// (im2col/im2col_checks.h, common/roi_checks.h, common/checks.h): the sizes and every product
// of them, the hyper-parameters, the dtype code and each pointer's alignment. So a raw call
// with a bad size is the same ValueError as on the CPU, never a launch over a wrapped size.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "adaptive_max_pool/adaptive_max_pool_checks.h"
#include "adaptive_max_pool/adaptive_max_pool_cuda.h"
#include "common/checks.h"
#include "common/cuda_check.h"  // kMaxLaunchElements (host-only constants; g++ sees cuda_runtime.h)
#include "common/roi_checks.h"
#include "im2col/im2col_checks.h"
#include "im2col/im2col_cuda.h"
#include "index_add/index_add_cuda.h"
#include "nms/nms_cuda.h"
#include "norm/norm_cuda.h"
#include "roi_align/roi_align_cuda.h"
#include "roi_pool/roi_pool_cuda.h"

namespace py = pybind11;
using minidl::index_t;
using ptr_t = std::uintptr_t;

namespace {

// dtype_code 0 = float32, 1 = float64 (anything else was read as float64): the element size.
index_t element_size(int dtype_code) {
  minidl::check(dtype_code == 0 || dtype_code == 1,
                "dtype_code must be 0 (float32) or 1 (float64), got " + std::to_string(dtype_code));
  return dtype_code == 0 ? 4 : 8;
}

// A device pointer must be aligned for its elements, as the CPU bindings require of NumPy data
// (CuPy's allocations are; a raw pointer at an odd byte offset is not). 0 passes: it is how
// norm's optional weight / bias say "none", and no other launcher is handed 0 by minidl.
struct DevicePointer {
  ptr_t pointer;
  const char* name;
};
void check_pointers(index_t alignment, std::initializer_list<DevicePointer> pointers) {
  for (const DevicePointer& p : pointers)
    minidl::check(p.pointer % static_cast<ptr_t>(alignment) == 0,
                  std::string(p.name) + ": the device pointer is not aligned to " +
                      std::to_string(alignment) + " bytes");
}

// One thread per element: at most kMaxLaunchElements in one launch (cuda_check.h).
void check_launch(index_t elements, const std::string& op) {
  minidl::check(elements <= minidl::kMaxLaunchElements,
                op + ": " + std::to_string(elements) + " elements are too many for one launch (at most " +
                    std::to_string(minidl::kMaxLaunchElements) + ")");
}

// norm's (N, C, P) sizes: >= 0, N*C*P in int64 and in one launch, N*C blocks in one grid.
void check_norm_sizes(index_t batch, index_t channels, index_t plane, const std::string& op) {
  minidl::check(batch >= 0 && channels >= 0 && plane >= 0,
                op + ": batch, channels and plane must be >= 0");
  check_launch(minidl::checked_product({batch, channels, plane}, op + ": the size of x"), op);
  minidl::check(batch * channels <= minidl::kMaxGridBlocks,
                op + ": batch * channels is too large for one grid");
}

}  // namespace

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "minidl's CUDA kernels (static cudart; import works without a GPU).";
  m.def(
      "index_add",
      [](ptr_t index, index_t n, ptr_t src, ptr_t out, index_t rows, index_t inner, int dtype_code,
         ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check(n >= 0 && rows >= 0 && inner >= 0, "index_add: n, rows and inner must be >= 0");
        minidl::checked_mul(n, inner, "index_add: the size of src (n * inner)");
        minidl::checked_mul(rows, inner, "index_add: the size of out (rows * inner)");
        check_launch(inner, "index_add");
        check_pointers(8, {{index, "index"}});
        check_pointers(size, {{src, "src"}, {out, "out"}});
        py::gil_scoped_release release;
        minidl::index_add_cuda(index, n, src, out, rows, inner, dtype_code, stream);
      },
      py::arg("index"), py::arg("n"), py::arg("src"), py::arg("out"), py::arg("rows"),
      py::arg("inner"), py::arg("dtype_code"), py::arg("stream"));

  // im2col / col2im (csrc/im2col/); minidl/kernels/im2col.py
  for (const bool to_columns : {true, false}) {
    const char* op = to_columns ? "im2col" : "col2im";
    m.def(
        op,
        [to_columns, op](ptr_t from, ptr_t to, index_t batch, index_t channels, index_t height,
                         index_t width, index_t kernel_h, index_t kernel_w, index_t stride_h,
                         index_t stride_w, index_t pad_h, index_t pad_w, index_t dilation_h,
                         index_t dilation_w, int dtype_code, ptr_t stream) {
          const index_t size = element_size(dtype_code);
          const auto g = minidl::checked_conv_geometry(batch, channels, height, width, kernel_h,
                                                       kernel_w, stride_h, stride_w, pad_h, pad_w,
                                                       dilation_h, dilation_w, op);
          // one thread per column entry (im2col) or per pixel (col2im); both counts checked
          check_launch(to_columns ? minidl::column_rows(g) * g.col_stride
                                  : batch * channels * height * width,
                       op);
          check_pointers(size, {{from, to_columns ? "x" : "cols"}, {to, to_columns ? "cols" : "x"}});
          py::gil_scoped_release release;
          (to_columns ? minidl::im2col_cuda : minidl::col2im_cuda)(
              from, to, batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
              pad_h, pad_w, dilation_h, dilation_w, dtype_code, stream);
        },
        py::arg(to_columns ? "x" : "cols"), py::arg(to_columns ? "cols" : "x"), py::arg("batch"),
        py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("kernel_h"),
        py::arg("kernel_w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"),
        py::arg("pad_w"), py::arg("dilation_h"), py::arg("dilation_w"), py::arg("dtype_code"),
        py::arg("stream"));
  }

  // normalization (csrc/norm/); minidl/kernels/norm.py
  m.def(
      "norm_statistics",
      [](ptr_t x, index_t batch, index_t channels, index_t plane, bool per_instance, ptr_t mean,
         ptr_t var, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_statistics");
        check_pointers(size, {{x, "x"}, {mean, "mean"}, {var, "var"}});
        py::gil_scoped_release release;
        minidl::norm_statistics_cuda(x, batch, channels, plane, per_instance, mean, var, dtype_code,
                                     stream);
      },
      py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("plane"),
      py::arg("per_instance"), py::arg("mean"), py::arg("var"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "norm_forward",
      [](ptr_t x, index_t batch, index_t channels, index_t plane, bool per_instance, ptr_t mean,
         ptr_t var, ptr_t weight, ptr_t bias, double eps, ptr_t out, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_forward");
        check_pointers(size, {{x, "x"}, {mean, "mean"}, {var, "var"}, {weight, "weight"},
                              {bias, "bias"}, {out, "out"}});
        py::gil_scoped_release release;
        minidl::norm_forward_cuda(x, batch, channels, plane, per_instance, mean, var, weight, bias,
                                  eps, out, dtype_code, stream);
      },
      py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("plane"),
      py::arg("per_instance"), py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("bias"),
      py::arg("eps"), py::arg("out"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "norm_backward_sums",
      [](ptr_t dy, ptr_t x, index_t batch, index_t channels, index_t plane, bool per_instance,
         ptr_t mean, ptr_t var, double eps, ptr_t sum_dy, ptr_t sum_dy_xhat, int dtype_code,
         ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_backward_sums");
        check_pointers(size, {{dy, "dy"}, {x, "x"}, {mean, "mean"}, {var, "var"},
                              {sum_dy, "sum_dy"}, {sum_dy_xhat, "sum_dy_xhat"}});
        py::gil_scoped_release release;
        minidl::norm_backward_sums_cuda(dy, x, batch, channels, plane, per_instance, mean, var, eps,
                                        sum_dy, sum_dy_xhat, dtype_code, stream);
      },
      py::arg("dy"), py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("plane"),
      py::arg("per_instance"), py::arg("mean"), py::arg("var"), py::arg("eps"), py::arg("sum_dy"),
      py::arg("sum_dy_xhat"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "norm_backward_input",
      [](ptr_t dy, ptr_t x, index_t batch, index_t channels, index_t plane, bool per_instance,
         ptr_t mean, ptr_t var, ptr_t weight, double eps, ptr_t sum_dy, ptr_t sum_dy_xhat,
         bool input_stats, ptr_t dx, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_backward_input");
        check_pointers(size, {{dy, "dy"}, {x, "x"}, {mean, "mean"}, {var, "var"},
                              {weight, "weight"}, {dx, "dx"}, {sum_dy, "sum_dy"},
                              {sum_dy_xhat, "sum_dy_xhat"}});
        py::gil_scoped_release release;
        minidl::norm_backward_input_cuda(dy, x, batch, channels, plane, per_instance, mean, var,
                                         weight, eps, sum_dy, sum_dy_xhat, input_stats, dx,
                                         dtype_code, stream);
      },
      py::arg("dy"), py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("plane"),
      py::arg("per_instance"), py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("eps"),
      py::arg("sum_dy"), py::arg("sum_dy_xhat"), py::arg("input_stats"), py::arg("dx"),
      py::arg("dtype_code"), py::arg("stream"));

  // detection (csrc/nms/, csrc/roi_pool/, csrc/roi_align/); minidl/kernels/{nms,roi_pool,roi_align}.py
  m.def(
      "nms_mask",
      [](ptr_t x1, ptr_t y1, ptr_t x2, ptr_t y2, ptr_t area, ptr_t label, index_t n,
         double iou_threshold, int dtype_code, ptr_t mask, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check(n >= 0, "nms_mask: n must be >= 0, got " + std::to_string(n));
        check_pointers(size, {{x1, "x1"}, {y1, "y1"}, {x2, "x2"}, {y2, "y2"}, {area, "area"}});
        check_pointers(8, {{label, "label"}, {mask, "mask"}});
        py::gil_scoped_release release;  // (the launcher refuses more boxes than one grid holds)
        minidl::nms_mask_cuda(x1, y1, x2, y2, area, label, n, iou_threshold, dtype_code, mask,
                              stream);
      },
      py::arg("x1"), py::arg("y1"), py::arg("x2"), py::arg("y2"), py::arg("area"), py::arg("label"),
      py::arg("n"), py::arg("iou_threshold"), py::arg("dtype_code"), py::arg("mask"),
      py::arg("stream"));
  m.def(
      "nms_keep",
      [](ptr_t mask, index_t n, ptr_t removed, ptr_t keep, ptr_t stream) {
        minidl::check(n >= 0, "nms_keep: n must be >= 0, got " + std::to_string(n));
        check_pointers(8, {{mask, "mask"}, {removed, "removed"}});
        py::gil_scoped_release release;
        minidl::nms_keep_cuda(mask, n, removed, keep, stream);
      },
      py::arg("mask"), py::arg("n"), py::arg("removed"), py::arg("keep"), py::arg("stream"));
  m.def(
      "roi_pool_forward",
      [](ptr_t input, index_t batch, index_t channels, index_t height, index_t width, ptr_t rois,
         index_t num_rois, double spatial_scale, index_t pooled_h, index_t pooled_w, ptr_t output,
         ptr_t argmax, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_pool");
        minidl::check_roi_sizes(num_rois, batch, channels, height, width, pooled_h, pooled_w,
                                "roi_pool");
        check_launch(num_rois * channels * pooled_h * pooled_w, "roi_pool");
        check_pointers(size, {{input, "input"}, {rois, "rois"}, {output, "output"}});
        check_pointers(8, {{argmax, "argmax"}});
        py::gil_scoped_release release;
        minidl::roi_pool_forward_cuda(input, batch, channels, height, width, rois, num_rois,
                                      spatial_scale, pooled_h, pooled_w, output, argmax,
                                      dtype_code, stream);
      },
      py::arg("input"), py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("rois"), py::arg("num_rois"), py::arg("spatial_scale"), py::arg("pooled_h"),
      py::arg("pooled_w"), py::arg("output"), py::arg("argmax"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "roi_pool_backward",
      [](ptr_t grad_output, ptr_t argmax, ptr_t rois, index_t num_rois, index_t batch,
         index_t channels, index_t height, index_t width, index_t pooled_h, index_t pooled_w,
         ptr_t grad_input, bool deterministic, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_roi_sizes(num_rois, batch, channels, height, width, pooled_h, pooled_w,
                                "roi_pool backward");
        check_launch(deterministic ? batch * channels : num_rois * channels * pooled_h * pooled_w,
                     "roi_pool backward");
        check_pointers(size, {{grad_output, "grad_output"}, {rois, "rois"},
                              {grad_input, "grad_input"}});
        check_pointers(8, {{argmax, "argmax"}});
        py::gil_scoped_release release;
        minidl::roi_pool_backward_cuda(grad_output, argmax, rois, num_rois, batch, channels, height,
                                       width, pooled_h, pooled_w, grad_input, deterministic,
                                       dtype_code, stream);
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("rois"), py::arg("num_rois"),
      py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("pooled_h"), py::arg("pooled_w"), py::arg("grad_input"), py::arg("deterministic"),
      py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "roi_align_forward",
      [](ptr_t input, index_t batch, index_t channels, index_t height, index_t width, ptr_t rois,
         index_t num_rois, double spatial_scale, index_t pooled_h, index_t pooled_w,
         index_t sampling_ratio, bool aligned, ptr_t output, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_align");
        minidl::check_sampling_ratio(sampling_ratio, "roi_align");
        minidl::check_roi_sizes(num_rois, batch, channels, height, width, pooled_h, pooled_w,
                                "roi_align");
        check_launch(num_rois * channels * pooled_h * pooled_w, "roi_align");
        check_pointers(size, {{input, "input"}, {rois, "rois"}, {output, "output"}});
        py::gil_scoped_release release;
        minidl::roi_align_forward_cuda(input, batch, channels, height, width, rois, num_rois,
                                       spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned,
                                       output, dtype_code, stream);
      },
      py::arg("input"), py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("rois"), py::arg("num_rois"), py::arg("spatial_scale"), py::arg("pooled_h"),
      py::arg("pooled_w"), py::arg("sampling_ratio"), py::arg("aligned"), py::arg("output"),
      py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "roi_align_backward",
      [](ptr_t grad_output, ptr_t rois, index_t num_rois, index_t batch, index_t channels,
         index_t height, index_t width, double spatial_scale, index_t pooled_h, index_t pooled_w,
         index_t sampling_ratio, bool aligned, ptr_t grad_input, bool deterministic,
         int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_align backward");
        minidl::check_sampling_ratio(sampling_ratio, "roi_align backward");
        minidl::check_roi_sizes(num_rois, batch, channels, height, width, pooled_h, pooled_w,
                                "roi_align backward");
        check_launch(deterministic ? batch * channels : num_rois * channels * pooled_h * pooled_w,
                     "roi_align backward");
        check_pointers(size, {{grad_output, "grad_output"}, {rois, "rois"},
                              {grad_input, "grad_input"}});
        py::gil_scoped_release release;
        minidl::roi_align_backward_cuda(grad_output, rois, num_rois, batch, channels, height, width,
                                        spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned,
                                        grad_input, deterministic, dtype_code, stream);
      },
      py::arg("grad_output"), py::arg("rois"), py::arg("num_rois"), py::arg("batch"),
      py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("spatial_scale"),
      py::arg("pooled_h"), py::arg("pooled_w"), py::arg("sampling_ratio"), py::arg("aligned"),
      py::arg("grad_input"), py::arg("deterministic"), py::arg("dtype_code"), py::arg("stream"));

  // adaptive max pooling (csrc/adaptive_max_pool/); minidl/kernels/adaptive_max_pool.py
  m.def(
      "adaptive_max_pool2d_forward",
      [](ptr_t input, index_t batch, index_t channels, index_t height, index_t width,
         index_t out_h, index_t out_w, ptr_t output, ptr_t argmax, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_adaptive_pool_sizes(batch, channels, height, width, out_h, out_w,
                                          "adaptive_max_pool2d");
        check_launch(batch * channels * out_h * out_w, "adaptive_max_pool2d");  // a thread per cell
        check_pointers(size, {{input, "input"}, {output, "output"}});
        check_pointers(8, {{argmax, "argmax"}});
        py::gil_scoped_release release;
        minidl::adaptive_max_pool2d_forward_cuda(input, batch, channels, height, width, out_h,
                                                 out_w, output, argmax, dtype_code, stream);
      },
      py::arg("input"), py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("out_h"), py::arg("out_w"), py::arg("output"), py::arg("argmax"),
      py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "adaptive_max_pool2d_backward",
      [](ptr_t grad_output, ptr_t argmax, index_t batch, index_t channels, index_t height,
         index_t width, index_t out_h, index_t out_w, ptr_t grad_input, int dtype_code,
         ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check_adaptive_pool_sizes(batch, channels, height, width, out_h, out_w,
                                          "adaptive_max_pool2d backward");
        check_launch(batch * channels, "adaptive_max_pool2d backward");  // a thread per plane
        check_pointers(size, {{grad_output, "grad_output"}, {grad_input, "grad_input"}});
        check_pointers(8, {{argmax, "argmax"}});
        py::gil_scoped_release release;
        minidl::adaptive_max_pool2d_backward_cuda(grad_output, argmax, batch, channels, height,
                                                  width, out_h, out_w, grad_input, dtype_code,
                                                  stream);
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("batch"), py::arg("channels"),
      py::arg("height"), py::arg("width"), py::arg("out_h"), py::arg("out_w"),
      py::arg("grad_input"), py::arg("dtype_code"), py::arg("stream"));
}
