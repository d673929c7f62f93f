// direct_conv_bind_cuda.cpp — minidl._C_cuda's binding of the direct K×K convolution (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): pointers, then sizes, options, the dtype code and
// the stream; sizes, products and alignment checked before a launch. (No `padded` scratch: the
// CUDA kernels read x with the bounds test of the shared body.)
#include "common/bind_cuda.h"
#include "direct_conv/direct_conv_checks.h"
#include "direct_conv/direct_conv_cuda.h"

void bind_direct_conv_cuda(py::module_& m) {
  m.def(
      "direct_conv",
      [](ptr_t x, ptr_t w, ptr_t bias, ptr_t y, index_t batch, index_t channels, index_t height,
         index_t width, index_t filters, index_t kernel, index_t pad_h, index_t pad_w, index_t stride,
         int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        const auto g = minidl::checked_direct_conv_geometry(batch, channels, height, width, filters,
                                                            kernel, pad_h, pad_w, stride, "direct_conv");
        check_launch(g.batch * g.filters * g.out_h * g.out_w, "direct_conv");
        check_pointers(size, {{x, "x"}, {w, "w"}, {bias, "bias"}, {y, "y"}});
        py::gil_scoped_release release;
        minidl::direct_conv_cuda(x, w, bias, y, batch, channels, height, width, filters, kernel,
                                 pad_h, pad_w, stride, dtype_code, stream);
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"), py::arg("batch"),
      py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("filters"),
      py::arg("kernel"), py::arg("pad_h"), py::arg("pad_w"), py::arg("stride"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "direct_conv_weight_grad",
      [](ptr_t x, ptr_t dy, ptr_t dW, index_t batch, index_t channels, index_t height,
         index_t width, index_t filters, index_t kernel, index_t pad_h, index_t pad_w, index_t stride,
         int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::checked_direct_conv_geometry(batch, channels, height, width, filters, kernel, pad_h,
                                             pad_w, stride, "direct_conv_weight_grad");
        check_launch(filters * channels * kernel * kernel, "direct_conv_weight_grad");
        check_pointers(size, {{x, "x"}, {dy, "dy"}, {dW, "dW"}});
        py::gil_scoped_release release;
        minidl::direct_conv_weight_grad_cuda(x, dy, dW, batch, channels, height, width, filters,
                                             kernel, pad_h, pad_w, stride, dtype_code, stream);
      },
      py::arg("x"), py::arg("dy"), py::arg("dW"), py::arg("batch"), py::arg("channels"),
      py::arg("height"), py::arg("width"), py::arg("filters"), py::arg("kernel"), py::arg("pad_h"),
      py::arg("pad_w"), py::arg("stride"), py::arg("dtype_code"), py::arg("stream"));
}
