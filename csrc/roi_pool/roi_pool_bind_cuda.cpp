// roi_pool_bind_cuda.cpp — minidl._C_cuda's binding of the roi_pool launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "common/roi_checks.h"
#include "roi_pool/roi_pool_cuda.h"

void bind_roi_pool_cuda(py::module_& m) {
  m.def(
      "roi_pool_forward",
      [](ptr_t input, ptr_t rois, ptr_t output, ptr_t argmax, index_t batch, index_t channels,
         index_t height, index_t width, index_t num_rois, index_t pooled_h, index_t pooled_w,
         double spatial_scale, int dtype_code, ptr_t stream) {
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
      py::arg("input"), py::arg("rois"), py::arg("output"), py::arg("argmax"), py::arg("batch"),
      py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("num_rois"),
      py::arg("pooled_h"), py::arg("pooled_w"), py::arg("spatial_scale"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "roi_pool_backward",
      [](ptr_t grad_output, ptr_t argmax, ptr_t rois, ptr_t grad_input, index_t num_rois,
         index_t batch, index_t channels, index_t height, index_t width, index_t pooled_h,
         index_t pooled_w, int dtype_code, ptr_t stream, bool deterministic) {
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
      py::arg("grad_output"), py::arg("argmax"), py::arg("rois"), py::arg("grad_input"),
      py::arg("num_rois"), py::arg("batch"), py::arg("channels"), py::arg("height"),
      py::arg("width"), py::arg("pooled_h"), py::arg("pooled_w"), py::arg("dtype_code"),
      py::arg("stream"), py::arg("deterministic") = false);
}
