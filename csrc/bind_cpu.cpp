// bind_cpu.cpp — the pybind11 module minidl._C: every CPU kernel, one section per family.
//
// Each binding checks dtype, alignment, contiguity, shapes, index ranges and every size it
// derives (in checked arithmetic: common/checks.h) *before* it touches memory — a bad call
// raises ValueError/TypeError naming the argument, never crashes — then releases the GIL and
// runs the OpenMP launcher. float32 and float64 overloads: a float64 gradcheck is never downcast.
#include <algorithm>
#include <cmath>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "adaptive_max_pool/adaptive_max_pool_checks.h"
#include "adaptive_max_pool/adaptive_max_pool_cpu.h"
#include "common/checks.h"
#include "common/roi_checks.h"
#include "im2col/im2col_checks.h"
#include "im2col/im2col_cpu.h"
#include "index_add/index_add_cpu.h"
#include "nms/nms_cpu.h"
#include "norm/norm_cpu.h"
#include "roi_align/roi_align_cpu.h"
#include "roi_pool/roi_pool_cpu.h"

namespace py = pybind11;
using minidl::index_t;

// ---- index_add: out[index[i], :] += src[i, :] ------------------------------------------------
template <typename T>
void index_add(py::array out, py::array index, py::array src) {
  minidl::check_array<T>(out, "out");
  minidl::check_array<T>(src, "src");
  minidl::check_array<index_t>(index, "index");
  minidl::check_ndim(index, 1, "index");
  minidl::check(out.ndim() >= 1 && src.ndim() == out.ndim(),
                "index_add: out and src must have the same number of dimensions (>= 1)");
  minidl::check(src.shape(0) == index.shape(0),
                "index_add: src has " + std::to_string(src.shape(0)) + " rows but index has " +
                    std::to_string(index.shape(0)) + " entries");
  for (py::ssize_t d = 1; d < out.ndim(); ++d)
    minidl::check(src.shape(d) == out.shape(d), "index_add: src shape " + minidl::shape_str(src) +
                                                    " does not match out shape " +
                                                    minidl::shape_str(out) + " after axis 0");
  const index_t rows = out.shape(0), n = index.shape(0);
  const index_t inner = rows ? out.size() / rows : 0;
  auto idx = static_cast<const index_t*>(index.data());
  for (index_t i = 0; i < n; ++i)
    minidl::check(idx[i] >= -rows && idx[i] < rows, "index_add: index " + std::to_string(idx[i]) +
                                                        " is out of range for " +
                                                        std::to_string(rows) + " rows");
  auto src_ptr = static_cast<const T*>(src.data());
  auto out_ptr = static_cast<T*>(out.mutable_data());
  py::gil_scoped_release release;
  minidl::index_add_cpu<T>(idx, n, src_ptr, out_ptr, rows, inner);
}

// ---- im2col / col2im: the image <-> column-matrix copies of a 2-D convolution --------------
// Checks that x is (N, C, H, W), cols is (C*kh*kw, N*out_h*out_w), both of dtype T and aligned,
// and the hyper-parameters and every size derived from them (im2col/im2col_checks.h, shared
// with bind_cuda.cpp); returns the geometry (see im2col/im2col.h). x must be C-contiguous; cols
// may have padded rows (unit stride along a row, any row stride at least the row length: its
// col_stride).
template <typename T>
minidl::ConvGeometry conv_geometry(const py::array& x, const py::array& cols, index_t kernel_h,
                                   index_t kernel_w, index_t stride_h, index_t stride_w,
                                   index_t pad_h, index_t pad_w, index_t dilation_h,
                                   index_t dilation_w, const char* op) {
  minidl::check_array<T>(x, "x");
  minidl::check_dtype<T>(cols, "cols");
  minidl::check_aligned<T>(cols, "cols");
  minidl::check_ndim(x, 4, "x");
  minidl::check_ndim(cols, 2, "cols");
  auto g = minidl::checked_conv_geometry(x.shape(0), x.shape(1), x.shape(2), x.shape(3), kernel_h,
                                         kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
                                         dilation_w, op);
  const index_t rows = minidl::column_rows(g), columns = g.col_stride;
  minidl::check(cols.shape(0) == rows && cols.shape(1) == columns,
                std::string(op) + ": cols has shape " + minidl::shape_str(cols) + ", expected (" +
                    std::to_string(rows) + ", " + std::to_string(columns) + ")");
  // (An empty cols — no rows or no columns — is never read or written: any strides will do;
  // NumPy gives such arrays strides of 0.)
  const py::ssize_t item = sizeof(T), row_bytes = cols.strides(0);
  minidl::check(rows * columns == 0 ||
                    ((columns <= 1 || cols.strides(1) == item) &&
                     (rows <= 1 || (row_bytes % item == 0 && row_bytes / item >= columns))),
                std::string(op) + ": cols must have contiguous rows (unit stride, row stride >= row length), got strides (" +
                    std::to_string(cols.strides(0)) + ", " + std::to_string(cols.strides(1)) + ")");
  if (rows > 1 && columns > 0) g.col_stride = row_bytes / item;
  minidl::checked_mul(rows, g.col_stride, std::string(op) + ": cols' extent (rows * row stride)");
  return g;
}

// elementwise = false: the fast CPU form (run copies); true: the GPU's per-entry loop.
template <typename T>
void im2col(py::array x, py::array cols, index_t kh, index_t kw, index_t sh, index_t sw,
            index_t ph, index_t pw, index_t dh, index_t dw, bool elementwise) {
  const auto g = conv_geometry<T>(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, "im2col");
  auto x_ptr = static_cast<const T*>(x.data());
  auto cols_ptr = static_cast<T*>(cols.mutable_data());
  py::gil_scoped_release release;
  if (elementwise)
    minidl::im2col_elementwise_cpu<T>(x_ptr, g, cols_ptr);
  else
    minidl::im2col_cpu<T>(x_ptr, g, cols_ptr);
}

// gather = false: the fast CPU form (a scatter per plane); true: the GPU's per-pixel gather.
template <typename T>
void col2im(py::array cols, py::array x, index_t kh, index_t kw, index_t sh, index_t sw,
            index_t ph, index_t pw, index_t dh, index_t dw, bool gather) {
  const auto g = conv_geometry<T>(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, "col2im");
  auto cols_ptr = static_cast<const T*>(cols.data());
  auto x_ptr = static_cast<T*>(x.mutable_data());
  py::gil_scoped_release release;
  if (gather)
    minidl::col2im_gather_cpu<T>(cols_ptr, g, x_ptr);
  else
    minidl::col2im_cpu<T>(cols_ptr, g, x_ptr);
}

// ---- norm: batch / instance normalization (csrc/norm/, minidl/kernels/norm.py) --------------
// x (N, C, ...) of dtype T; same-shaped dy / out / dx; statistics (groups,) with groups = C
// (batch norm) or N*C (instance norm); weight / bias (C,) or None.
template <typename T>
minidl::NormGeometry norm_geometry(const py::array& x, bool per_instance) {
  minidl::check_array<T>(x, "x");
  minidl::check(x.ndim() >= 2, "norm: x must have shape (N, C, ...), got " + minidl::shape_str(x));
  index_t plane = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) plane *= x.shape(d);
  return {x.shape(0), x.shape(1), plane, per_instance};
}

template <typename T>
void check_like(const py::array& a, const py::array& x, const char* name) {
  minidl::check_array<T>(a, name);
  bool same = a.ndim() == x.ndim();
  for (py::ssize_t d = 0; same && d < x.ndim(); ++d) same = a.shape(d) == x.shape(d);
  minidl::check(same, std::string("norm: ") + name + " has shape " + minidl::shape_str(a) +
                          ", expected " + minidl::shape_str(x));
}

template <typename T>
const T* vector_of(const py::array& a, index_t length, const char* name) {
  minidl::check_array<T>(a, name);
  minidl::check(a.ndim() == 1 && a.shape(0) == length,
                std::string("norm: ") + name + " has shape " + minidl::shape_str(a) +
                    ", expected (" + std::to_string(length) + ",)");
  return static_cast<const T*>(a.data());
}

template <typename T>
T* mutable_vector_of(py::array& a, index_t length, const char* name) {
  vector_of<T>(a, length, name);
  return static_cast<T*>(a.mutable_data());
}

// weight / bias: None -> nullptr (gamma = 1, beta = 0). Only an ndarray is accepted: casting a
// list would build a temporary array that dies before the kernel reads it.
template <typename T>
const T* optional_vector_of(const py::object& a, index_t length, const char* name) {
  if (a.is_none()) return nullptr;
  if (!py::isinstance<py::array>(a))
    throw py::type_error(std::string("norm: ") + name + " must be an ndarray or None");
  return vector_of<T>(py::reinterpret_borrow<py::array>(a), length, name);
}

// The geometry of x and its statistics (groups,), checked: what every pass after the first takes.
template <typename T>
struct NormInputs {
  minidl::NormGeometry g;
  index_t groups;
  const T *x, *mean, *var;
};

template <typename T>
NormInputs<T> norm_inputs(const py::array& x, const py::array& mean, const py::array& var,
                          bool per_instance) {
  const auto g = norm_geometry<T>(x, per_instance);
  const index_t groups = minidl::norm_groups(g);
  return {g, groups, static_cast<const T*>(x.data()), vector_of<T>(mean, groups, "mean"),
          vector_of<T>(var, groups, "var")};
}

void norm_statistics(py::array x, py::array mean, py::array var, bool per_instance) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto g = norm_geometry<T>(x, per_instance);
    const index_t groups = minidl::norm_groups(g);
    minidl::check(g.batch * g.plane > 0, "norm: x has no values per group: " + minidl::shape_str(x));
    auto m = mutable_vector_of<T>(mean, groups, "mean");
    auto v = mutable_vector_of<T>(var, groups, "var");
    auto x_ptr = static_cast<const T*>(x.data());
    py::gil_scoped_release release;
    minidl::norm_statistics_cpu<T>(x_ptr, g, m, v);
  });
}

void norm_forward(py::array x, py::array mean, py::array var, py::object weight, py::object bias,
                  double eps, bool per_instance, py::array out) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto in = norm_inputs<T>(x, mean, var, per_instance);
    check_like<T>(out, x, "out");
    auto w = optional_vector_of<T>(weight, in.g.channels, "weight");
    auto b = optional_vector_of<T>(bias, in.g.channels, "bias");
    auto out_ptr = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release release;
    minidl::norm_forward_cpu<T>(in.x, in.g, in.mean, in.var, w, b, T(eps), out_ptr);
  });
}

void norm_backward_sums(py::array dy, py::array x, py::array mean, py::array var, double eps,
                        bool per_instance, py::array sum_dy, py::array sum_dy_xhat) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto in = norm_inputs<T>(x, mean, var, per_instance);
    check_like<T>(dy, x, "dy");
    auto s = mutable_vector_of<T>(sum_dy, in.groups, "sum_dy");
    auto s_xhat = mutable_vector_of<T>(sum_dy_xhat, in.groups, "sum_dy_xhat");
    auto dy_ptr = static_cast<const T*>(dy.data());
    py::gil_scoped_release release;
    minidl::norm_backward_sums_cpu<T>(dy_ptr, in.x, in.g, in.mean, in.var, T(eps), s, s_xhat);
  });
}

void norm_backward_input(py::array dy, py::array x, py::array mean, py::array var,
                         py::object weight, double eps, py::array sum_dy, py::array sum_dy_xhat,
                         bool input_stats, bool per_instance, py::array dx) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto in = norm_inputs<T>(x, mean, var, per_instance);
    check_like<T>(dy, x, "dy");
    check_like<T>(dx, x, "dx");
    auto w = optional_vector_of<T>(weight, in.g.channels, "weight");
    auto s = vector_of<T>(sum_dy, in.groups, "sum_dy");
    auto s_xhat = vector_of<T>(sum_dy_xhat, in.groups, "sum_dy_xhat");
    auto dy_ptr = static_cast<const T*>(dy.data());
    auto dx_ptr = static_cast<T*>(dx.mutable_data());
    py::gil_scoped_release release;
    minidl::norm_backward_input_cpu<T>(dy_ptr, in.x, in.g, in.mean, in.var, w, T(eps), s, s_xhat,
                                       input_stats, dx_ptr);
  });
}

// ---- detection: nms, roi_pool, roi_align (csrc/nms/, csrc/roi_pool/, csrc/roi_align/) ------
// These bindings check dtypes, shapes and parameters (the RoI ops' bounds on output_size and
// sampling_ratio: common/roi_checks.h). They do *not* check the values of boxes,
// RoIs or argmax switches (NaN, inf, batch indices out of range): the op layer
// (minidl/ops/) rejects those with a ValueError, and the kernel bodies are written so that any
// value gives a defined result and never an out-of-range access (tests call these directly).
template <typename T>
void check_rois(const py::array& rois, index_t count, const char* op) {
  minidl::check_array<T>(rois, "rois");
  minidl::check(rois.ndim() == 2 && rois.shape(1) == 5,
                std::string(op) + ": rois must have shape (K, 5) = (batch index, x1, y1, x2, y2), got " +
                    minidl::shape_str(rois));
  if (count >= 0)
    minidl::check(rois.shape(0) == count, std::string(op) + ": rois has " +
                                              std::to_string(rois.shape(0)) + " rows, expected " +
                                              std::to_string(count));
}

// The zeroed grad_input of a backward pass (its sizes were checked by check_roi_sizes).
template <typename T>
py::array_t<T> zeros_like_plane(index_t batch, index_t channels, index_t height, index_t width) {
  py::array_t<T> out({batch, channels, height, width});
  std::fill_n(out.mutable_data(), out.size(), T(0));
  return out;
}

template <typename T>
py::array nms_binding(py::array boxes, py::array scores, double iou_threshold, py::object labels) {
  minidl::check_array<T>(boxes, "boxes");
  minidl::check(boxes.ndim() == 2 && boxes.shape(1) == 4,
                "nms: boxes must have shape (N, 4), got " + minidl::shape_str(boxes));
  const index_t n = boxes.shape(0);
  minidl::check_array<T>(scores, "scores");
  minidl::check(scores.ndim() == 1 && scores.shape(0) == n,
                "nms: scores must have shape (" + std::to_string(n) + ",), got " +
                    minidl::shape_str(scores));
  minidl::check(!std::isnan(iou_threshold), "nms: iou_threshold must be a number, got NaN");
  const index_t* label_ptr = nullptr;
  py::array label_array;
  if (!labels.is_none()) {
    if (!py::isinstance<py::array>(labels)) throw py::type_error("nms: labels must be None or an int64 array");
    label_array = py::reinterpret_borrow<py::array>(labels);
    minidl::check_array<index_t>(label_array, "labels");
    minidl::check(label_array.ndim() == 1 && label_array.shape(0) == n,
                  "nms: labels must have shape (" + std::to_string(n) + ",), got " +
                      minidl::shape_str(label_array));
    label_ptr = static_cast<const index_t*>(label_array.data());
  }
  std::vector<index_t> keep(n);
  index_t kept = 0;
  {
    py::gil_scoped_release release;
    kept = minidl::nms_cpu<T>(static_cast<const T*>(boxes.data()),
                              static_cast<const T*>(scores.data()), label_ptr, n, iou_threshold,
                              keep.data());
  }
  py::array_t<index_t> result(kept);
  std::copy_n(keep.data(), kept, result.mutable_data());
  return result;
}

template <typename T>
py::tuple roi_pool_forward(py::array input, py::array rois, double spatial_scale, index_t pooled_h,
                           index_t pooled_w) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  check_rois<T>(rois, -1, "roi_pool");
  minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_pool");
  const index_t k = rois.shape(0), c = input.shape(1);
  minidl::check_roi_sizes(k, input.shape(0), c, input.shape(2), input.shape(3), pooled_h, pooled_w,
                          "roi_pool");
  py::array_t<T> output({k, c, pooled_h, pooled_w});
  py::array_t<index_t> argmax({k, c, pooled_h, pooled_w});
  auto in = static_cast<const T*>(input.data());
  auto r = static_cast<const T*>(rois.data());
  T* out = output.mutable_data();
  index_t* am = argmax.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::roi_pool_forward_cpu<T>(in, input.shape(0), c, input.shape(2), input.shape(3), r, k,
                                    spatial_scale, pooled_h, pooled_w, out, am);
  }
  return py::make_tuple(output, argmax);
}

template <typename T>
py::array roi_pool_backward(py::array grad_output, py::array argmax, py::array rois,
                            index_t batch_size, index_t height, index_t width) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  minidl::check_array<index_t>(argmax, "argmax");
  minidl::check(argmax.ndim() == 4 && std::equal(argmax.shape(), argmax.shape() + 4, grad_output.shape()),
                "roi_pool backward: argmax shape " + minidl::shape_str(argmax) +
                    " differs from grad_output shape " + minidl::shape_str(grad_output));
  check_rois<T>(rois, grad_output.shape(0), "roi_pool backward");
  const index_t c = grad_output.shape(1);
  minidl::check_roi_sizes(grad_output.shape(0), batch_size, c, height, width, grad_output.shape(2),
                          grad_output.shape(3), "roi_pool backward");
  py::array_t<T> grad_input = zeros_like_plane<T>(batch_size, c, height, width);
  auto go = static_cast<const T*>(grad_output.data());
  auto am = static_cast<const index_t*>(argmax.data());
  auto r = static_cast<const T*>(rois.data());
  T* gi = grad_input.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::roi_pool_backward_cpu<T>(go, am, r, grad_output.shape(0), batch_size, c, height, width,
                                     grad_output.shape(2), grad_output.shape(3), gi);
  }
  return grad_input;
}

template <typename T>
py::array roi_align_forward(py::array input, py::array rois, double spatial_scale, index_t pooled_h,
                            index_t pooled_w, index_t sampling_ratio, bool aligned) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  check_rois<T>(rois, -1, "roi_align");
  minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_align");
  minidl::check_sampling_ratio(sampling_ratio, "roi_align");
  const index_t k = rois.shape(0), c = input.shape(1);
  minidl::check_roi_sizes(k, input.shape(0), c, input.shape(2), input.shape(3), pooled_h, pooled_w,
                          "roi_align");
  py::array_t<T> output({k, c, pooled_h, pooled_w});
  auto in = static_cast<const T*>(input.data());
  auto r = static_cast<const T*>(rois.data());
  T* out = output.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::roi_align_forward_cpu<T>(in, input.shape(0), c, input.shape(2), input.shape(3), r, k,
                                     spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned,
                                     out);
  }
  return output;
}

template <typename T>
py::array roi_align_backward(py::array grad_output, py::array rois, double spatial_scale,
                             index_t batch_size, index_t height, index_t width,
                             index_t sampling_ratio, bool aligned) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  check_rois<T>(rois, grad_output.shape(0), "roi_align backward");
  minidl::check_roi_params(spatial_scale, grad_output.shape(2), grad_output.shape(3),
                           "roi_align backward");
  minidl::check_sampling_ratio(sampling_ratio, "roi_align backward");
  const index_t c = grad_output.shape(1);
  minidl::check_roi_sizes(grad_output.shape(0), batch_size, c, height, width, grad_output.shape(2),
                          grad_output.shape(3), "roi_align backward");
  py::array_t<T> grad_input = zeros_like_plane<T>(batch_size, c, height, width);
  auto go = static_cast<const T*>(grad_output.data());
  auto r = static_cast<const T*>(rois.data());
  T* gi = grad_input.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::roi_align_backward_cpu<T>(go, r, grad_output.shape(0), batch_size, c, height, width,
                                      spatial_scale, grad_output.shape(2), grad_output.shape(3),
                                      sampling_ratio, aligned, gi);
  }
  return grad_input;
}

// ---- adaptive max pooling (csrc/adaptive_max_pool/, minidl/kernels/adaptive_max_pool.py) ----
template <typename T>
py::tuple adaptive_max_pool2d_forward(py::array input, index_t out_h, index_t out_w) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  const index_t n = input.shape(0), c = input.shape(1), h = input.shape(2), w = input.shape(3);
  minidl::check_adaptive_pool_sizes(n, c, h, w, out_h, out_w, "adaptive_max_pool2d");
  py::array_t<T> output({n, c, out_h, out_w});
  py::array_t<index_t> argmax({n, c, out_h, out_w});
  auto in = static_cast<const T*>(input.data());
  T* out = output.mutable_data();
  index_t* am = argmax.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::adaptive_max_pool2d_forward_cpu<T>(in, n, c, h, w, out_h, out_w, out, am);
  }
  return py::make_tuple(output, argmax);
}

template <typename T>
py::array adaptive_max_pool2d_backward(py::array grad_output, py::array argmax, index_t height,
                                       index_t width) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  minidl::check_array<index_t>(argmax, "argmax");
  minidl::check(argmax.ndim() == 4 && std::equal(argmax.shape(), argmax.shape() + 4, grad_output.shape()),
                "adaptive_max_pool2d backward: argmax shape " + minidl::shape_str(argmax) +
                    " differs from grad_output shape " + minidl::shape_str(grad_output));
  const index_t n = grad_output.shape(0), c = grad_output.shape(1);
  const index_t out_h = grad_output.shape(2), out_w = grad_output.shape(3);
  minidl::check_adaptive_pool_sizes(n, c, height, width, out_h, out_w,
                                    "adaptive_max_pool2d backward");
  py::array_t<T> grad_input = zeros_like_plane<T>(n, c, height, width);
  auto go = static_cast<const T*>(grad_output.data());
  auto am = static_cast<const index_t*>(argmax.data());
  T* gi = grad_input.mutable_data();
  {
    py::gil_scoped_release release;
    minidl::adaptive_max_pool2d_backward_cpu<T>(go, am, n, c, height, width, out_h, out_w, gi);
  }
  return grad_input;
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "minidl's C++ (OpenMP) kernels; see csrc/<kernel>/ and minidl/kernels/.";
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  m.def("norm_statistics", &norm_statistics, py::arg("x"), py::arg("mean"), py::arg("var"),
        py::arg("per_instance"));
  m.def("norm_forward", &norm_forward, py::arg("x"), py::arg("mean"), py::arg("var"),
        py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("per_instance"),
        py::arg("out"));
  m.def("norm_backward_sums", &norm_backward_sums, py::arg("dy"), py::arg("x"), py::arg("mean"),
        py::arg("var"), py::arg("eps"), py::arg("per_instance"), py::arg("sum_dy"),
        py::arg("sum_dy_xhat"));
  m.def("norm_backward_input", &norm_backward_input, py::arg("dy"), py::arg("x"),
        py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("eps"), py::arg("sum_dy"),
        py::arg("sum_dy_xhat"), py::arg("input_stats"), py::arg("per_instance"), py::arg("dx"));
  m.def(
      "index_add",
      [](py::array out, py::array index, py::array src) {
        minidl::dispatch_float(out, "out", [&](auto t) { index_add<decltype(t)>(out, index, src); });
      },
      py::arg("out"), py::arg("index"), py::arg("src"),
      "out[index[i]] += src[i] (in place), deterministic; float32 or float64.");
  for (const bool elementwise : {false, true}) {
    m.def(
        elementwise ? "im2col_elementwise" : "im2col",
        [elementwise](py::array x, py::array cols, index_t kernel_h, index_t kernel_w,
                      index_t stride_h, index_t stride_w, index_t pad_h, index_t pad_w,
                      index_t dilation_h, index_t dilation_w) {
          minidl::dispatch_float(x, "x", [&](auto t) {
            im2col<decltype(t)>(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                dilation_h, dilation_w, elementwise);
          });
        },
        py::arg("x"), py::arg("cols"), py::arg("kernel_h"), py::arg("kernel_w"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"),
        py::arg("dilation_h"), py::arg("dilation_w"),
        elementwise ? "im2col as the CUDA kernel computes it (im2col_element per column entry), "
                      "for tests: the same result as im2col, bit for bit."
                    : "cols[(c,i,j), (n,oy,ox)] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw] "
                      "(0 outside); x (N, C, H, W), cols (C*kh*kw, N*out_h*out_w) written in place.");
  }
  for (const bool gather : {false, true}) {
    m.def(
        gather ? "col2im_gather" : "col2im",
        [gather](py::array cols, py::array x, index_t kernel_h, index_t kernel_w,
                 index_t stride_h, index_t stride_w, index_t pad_h, index_t pad_w,
                 index_t dilation_h, index_t dilation_w) {
          minidl::dispatch_float(cols, "cols", [&](auto t) {
            col2im<decltype(t)>(cols, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                dilation_h, dilation_w, gather);
          });
        },
        py::arg("cols"), py::arg("x"), py::arg("kernel_h"), py::arg("kernel_w"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"),
        py::arg("dilation_h"), py::arg("dilation_w"),
        gather ? "col2im as the CUDA kernel computes it (a gather per pixel, col2im_pixel), for "
                 "tests: the same result as col2im, bit for bit."
               : "The transpose of im2col: x[n, c, y, x] = sum of the column entries copied from "
                 "that pixel, taps in row-major order (deterministic); x (N, C, H, W) "
                 "overwritten. A scatter per image plane on the CPU.");
  }
  // detection (csrc/nms/, csrc/roi_pool/, csrc/roi_align/); see minidl/ops/ for the conventions
  m.def(
      "nms",
      [](py::array boxes, py::array scores, double iou_threshold, py::object labels) {
        py::array keep;
        minidl::dispatch_float(boxes, "boxes", [&](auto t) {
          keep = nms_binding<decltype(t)>(boxes, scores, iou_threshold, labels);
        });
        return keep;
      },
      py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"), py::arg("labels") = py::none(),
      "Greedy NMS: int64 indices of the kept boxes by decreasing score (stable). labels (N,) "
      "int64: boxes of different labels never suppress each other.");
  m.def(
      "roi_pool_forward",
      [](py::array input, py::array rois, double spatial_scale, index_t pooled_h, index_t pooled_w) {
        py::tuple result;
        minidl::dispatch_float(input, "input", [&](auto t) {
          result = roi_pool_forward<decltype(t)>(input, rois, spatial_scale, pooled_h, pooled_w);
        });
        return result;
      },
      py::arg("input"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_h"),
      py::arg("pooled_w"), "(output, argmax), both (K, C, pooled_h, pooled_w); argmax int64.");
  m.def(
      "roi_pool_backward",
      [](py::array grad_output, py::array argmax, py::array rois, index_t batch_size,
         index_t height, index_t width) {
        py::array result;
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          result = roi_pool_backward<decltype(t)>(grad_output, argmax, rois, batch_size, height,
                                                  width);
        });
        return result;
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("rois"), py::arg("batch_size"),
      py::arg("height"), py::arg("width"), "grad_input (N, C, H, W); deterministic.");
  m.def(
      "roi_align_forward",
      [](py::array input, py::array rois, double spatial_scale, index_t pooled_h, index_t pooled_w,
         index_t sampling_ratio, bool aligned) {
        py::array result;
        minidl::dispatch_float(input, "input", [&](auto t) {
          result = roi_align_forward<decltype(t)>(input, rois, spatial_scale, pooled_h, pooled_w,
                                                  sampling_ratio, aligned);
        });
        return result;
      },
      py::arg("input"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_h"),
      py::arg("pooled_w"), py::arg("sampling_ratio"), py::arg("aligned"),
      "output (K, C, pooled_h, pooled_w).");
  m.def(
      "roi_align_backward",
      [](py::array grad_output, py::array rois, double spatial_scale, index_t batch_size,
         index_t height, index_t width, index_t sampling_ratio, bool aligned) {
        py::array result;
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          result = roi_align_backward<decltype(t)>(grad_output, rois, spatial_scale, batch_size,
                                                   height, width, sampling_ratio, aligned);
        });
        return result;
      },
      py::arg("grad_output"), py::arg("rois"), py::arg("spatial_scale"), py::arg("batch_size"),
      py::arg("height"), py::arg("width"), py::arg("sampling_ratio"), py::arg("aligned"),
      "grad_input (N, C, H, W); deterministic.");
  // adaptive max pooling (csrc/adaptive_max_pool/); minidl/kernels/adaptive_max_pool.py
  m.def(
      "adaptive_max_pool2d_forward",
      [](py::array input, index_t out_h, index_t out_w) {
        py::tuple result;
        minidl::dispatch_float(input, "input", [&](auto t) {
          result = adaptive_max_pool2d_forward<decltype(t)>(input, out_h, out_w);
        });
        return result;
      },
      py::arg("input"), py::arg("out_h"), py::arg("out_w"),
      "(output, argmax), both (N, C, out_h, out_w); argmax int64 = h * W + w. PyTorch's bins.");
  m.def(
      "adaptive_max_pool2d_backward",
      [](py::array grad_output, py::array argmax, index_t height, index_t width) {
        py::array result;
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          result = adaptive_max_pool2d_backward<decltype(t)>(grad_output, argmax, height, width);
        });
        return result;
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("height"), py::arg("width"),
      "grad_input (N, C, height, width); deterministic.");
}
