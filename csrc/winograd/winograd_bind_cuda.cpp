// winograd_bind_cuda.cpp — minidl._C_cuda's binding of the Winograd transforms (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): pointers, then sizes, options, the dtype code and
// the stream; sizes, products and alignment checked before a launch.
#include "common/bind_cuda.h"
#include "winograd/winograd_checks.h"
#include "winograd/winograd_cuda.h"

void bind_winograd_cuda(py::module_& m) {
  m.def(
      "winograd_input_transform",
      [](ptr_t x, ptr_t V, index_t batch, index_t channels, index_t height, index_t width,
         index_t pad_h, index_t pad_w, index_t tile, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        const auto g = minidl::checked_winograd_geometry(batch, channels, height, width, pad_h,
                                                         pad_w, tile, "winograd_input_transform");
        check_launch(batch * channels * g.tiles_h * g.tiles_w, "winograd_input_transform");
        check_pointers(size, {{x, "x"}, {V, "V"}});
        py::gil_scoped_release release;
        minidl::winograd_input_transform_cuda(x, V, batch, channels, height, width, pad_h, pad_w,
                                              tile, dtype_code, stream);
      },
      py::arg("x"), py::arg("V"), py::arg("batch"), py::arg("channels"), py::arg("height"),
      py::arg("width"), py::arg("pad_h"), py::arg("pad_w"), py::arg("tile"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "winograd_output_transform",
      [](ptr_t M, ptr_t bias, ptr_t y, index_t batch, index_t filters, index_t out_h,
         index_t out_w, index_t tile, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        const auto g = minidl::checked_winograd_output_geometry(batch, filters, out_h, out_w, tile,
                                                                "winograd_output_transform");
        check_launch(batch * filters * g.tiles_h * g.tiles_w, "winograd_output_transform");
        check_pointers(size, {{M, "M"}, {bias, "bias"}, {y, "y"}});
        py::gil_scoped_release release;
        minidl::winograd_output_transform_cuda(M, bias, y, batch, filters, out_h, out_w, tile,
                                               dtype_code, stream);
      },
      py::arg("M"), py::arg("bias"), py::arg("y"), py::arg("batch"), py::arg("filters"),
      py::arg("out_h"), py::arg("out_w"), py::arg("tile"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "winograd_output_adjoint",
      [](ptr_t dy, ptr_t dM, index_t batch, index_t filters, index_t out_h, index_t out_w,
         index_t tile, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        const auto g = minidl::checked_winograd_output_geometry(batch, filters, out_h, out_w, tile,
                                                                "winograd_output_adjoint");
        check_launch(batch * filters * g.tiles_h * g.tiles_w, "winograd_output_adjoint");
        check_pointers(size, {{dy, "dy"}, {dM, "dM"}});
        py::gil_scoped_release release;
        minidl::winograd_output_adjoint_cuda(dy, dM, batch, filters, out_h, out_w, tile, dtype_code,
                                             stream);
      },
      py::arg("dy"), py::arg("dM"), py::arg("batch"), py::arg("filters"), py::arg("out_h"),
      py::arg("out_w"), py::arg("tile"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "winograd_input_adjoint",
      [](ptr_t dV, ptr_t dx, index_t batch, index_t channels, index_t height, index_t width,
         index_t pad_h, index_t pad_w, index_t tile, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::checked_winograd_geometry(batch, channels, height, width, pad_h, pad_w, tile,
                                          "winograd_input_adjoint");
        check_launch(batch * channels * height * width, "winograd_input_adjoint");
        check_pointers(size, {{dV, "dV"}, {dx, "dx"}});
        py::gil_scoped_release release;
        minidl::winograd_input_adjoint_cuda(dV, dx, batch, channels, height, width, pad_h, pad_w,
                                            tile, dtype_code, stream);
      },
      py::arg("dV"), py::arg("dx"), py::arg("batch"), py::arg("channels"), py::arg("height"),
      py::arg("width"), py::arg("pad_h"), py::arg("pad_w"), py::arg("tile"), py::arg("dtype_code"),
      py::arg("stream"));
}
