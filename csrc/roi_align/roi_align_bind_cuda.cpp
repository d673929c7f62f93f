// roi_align_bind_cuda.cpp — minidl._C_cuda's binding of the roi_align launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "common/roi_checks.h"
#include "roi_align/roi_align_cuda.h"

void bind_roi_align_cuda(py::module_& m) {
  m.def(
      "roi_align_forward",
      [](ptr_t input, ptr_t rois, ptr_t output, index_t batch, index_t channels, index_t height,
         index_t width, index_t num_rois, index_t pooled_h, index_t pooled_w, double spatial_scale,
         index_t sampling_ratio, bool aligned, int dtype_code, ptr_t stream) {
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
      py::arg("input"), py::arg("rois"), py::arg("output"), py::arg("batch"), py::arg("channels"),
      py::arg("height"), py::arg("width"), py::arg("num_rois"), py::arg("pooled_h"),
      py::arg("pooled_w"), py::arg("spatial_scale"), py::arg("sampling_ratio"), py::arg("aligned"),
      py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "roi_align_backward",
      [](ptr_t grad_output, ptr_t rois, ptr_t grad_input, index_t num_rois, index_t batch,
         index_t channels, index_t height, index_t width, index_t pooled_h, index_t pooled_w,
         double spatial_scale, index_t sampling_ratio, bool aligned, int dtype_code, ptr_t stream,
         bool deterministic) {
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
      py::arg("grad_output"), py::arg("rois"), py::arg("grad_input"), py::arg("num_rois"),
      py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("pooled_h"), py::arg("pooled_w"), py::arg("spatial_scale"),
      py::arg("sampling_ratio"), py::arg("aligned"), py::arg("dtype_code"), py::arg("stream"),
      py::arg("deterministic") = false);
}
