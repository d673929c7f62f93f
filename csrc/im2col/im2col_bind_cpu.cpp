// im2col_bind_cpu.cpp — minidl._C's binding of im2col / col2im: the image <-> column-matrix copies of a 2-D convolution.
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "im2col/im2col_checks.h"
#include "im2col/im2col_cpu.h"

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

// fast = true: the fast CPU form (im2col_cpu_fast.cpp); false: the textbook form, the body the
// CUDA kernel runs (im2col_cpu.cpp). The same result bit for bit.
template <typename T>
void im2col(py::array x, py::array cols, index_t kh, index_t kw, index_t sh, index_t sw,
            index_t ph, index_t pw, index_t dh, index_t dw, bool fast) {
  const auto g = conv_geometry<T>(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, "im2col");
  auto x_ptr = static_cast<const T*>(x.data());
  auto cols_ptr = static_cast<T*>(cols.mutable_data());
  py::gil_scoped_release release;
  (fast ? minidl::im2col_cpu_fast<T> : minidl::im2col_cpu<T>)(x_ptr, g, cols_ptr);
}

template <typename T>
void col2im(py::array cols, py::array x, index_t kh, index_t kw, index_t sh, index_t sw,
            index_t ph, index_t pw, index_t dh, index_t dw, bool fast) {
  const auto g = conv_geometry<T>(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, "col2im");
  auto cols_ptr = static_cast<const T*>(cols.data());
  auto x_ptr = static_cast<T*>(x.mutable_data());
  py::gil_scoped_release release;
  (fast ? minidl::col2im_cpu_fast<T> : minidl::col2im_cpu<T>)(cols_ptr, g, x_ptr);
}

void bind_im2col_cpu(py::module_& m) {
  m.def(
      "im2col",
      [](py::array x, py::array cols, index_t kernel_h, index_t kernel_w, index_t stride_h,
         index_t stride_w, index_t pad_h, index_t pad_w, index_t dilation_h, index_t dilation_w,
         bool fast) {
        minidl::dispatch_float(x, "x", [&](auto t) {
          im2col<decltype(t)>(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                              dilation_h, dilation_w, fast);
        });
      },
      py::arg("x"), py::arg("cols"), py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h"),
      py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("dilation_h"),
      py::arg("dilation_w"), py::arg("fast") = true,
      "cols[(c,i,j), (n,oy,ox)] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw] (0 outside); "
      "x (N, C, H, W), cols (C*kh*kw, N*out_h*out_w) written in place. fast=False: the "
      "textbook form (one im2col_element call per entry, as the CUDA kernel), same result.");
  m.def(
      "col2im",
      [](py::array cols, py::array x, index_t kernel_h, index_t kernel_w, index_t stride_h,
         index_t stride_w, index_t pad_h, index_t pad_w, index_t dilation_h, index_t dilation_w,
         bool fast) {
        minidl::dispatch_float(cols, "cols", [&](auto t) {
          col2im<decltype(t)>(cols, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                              dilation_h, dilation_w, fast);
        });
      },
      py::arg("cols"), py::arg("x"), py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h"),
      py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("dilation_h"),
      py::arg("dilation_w"), py::arg("fast") = true,
      "The transpose of im2col: x[n, c, y, x] = sum of the column entries copied from that "
      "pixel, taps in row-major order (deterministic); x (N, C, H, W) overwritten. fast=False: "
      "the textbook form (one col2im_pixel gather per pixel, as the CUDA kernel), same result.");
}
