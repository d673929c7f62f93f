// im2col_bind_cuda.cpp — minidl._C_cuda's binding of the im2col launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "im2col/im2col_checks.h"
#include "im2col/im2col_cuda.h"

void bind_im2col_cuda(py::module_& m) {
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

}
