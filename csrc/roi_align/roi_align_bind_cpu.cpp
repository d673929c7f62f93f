// roi_align_bind_cpu.cpp — minidl._C's binding of roi_align: RoI bilinear pooling (minidl/ops/roi_align.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "common/roi_checks.h"
#include "roi_align/roi_align_cpu.h"

// output (K, C, pooled_h, pooled_w), allocated by the caller: pooled_h/w are its sizes.
template <typename T>
void roi_align_forward(py::array input, py::array rois, py::array output, double spatial_scale,
                       index_t sampling_ratio, bool aligned, bool fast) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  check_rois<T>(rois, -1, "roi_align");
  minidl::check_ndim(output, 4, "output");
  const index_t k = rois.shape(0), c = input.shape(1);
  const index_t pooled_h = output.shape(2), pooled_w = output.shape(3);
  minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_align");
  minidl::check_sampling_ratio(sampling_ratio, "roi_align");
  minidl::check_roi_sizes(k, input.shape(0), c, input.shape(2), input.shape(3), pooled_h, pooled_w,
                          "roi_align");
  T* out = output_of<T>(output, {k, c, pooled_h, pooled_w}, "roi_align", "output");
  auto in = static_cast<const T*>(input.data());
  auto r = static_cast<const T*>(rois.data());
  py::gil_scoped_release release;
  const auto launch = fast ? minidl::roi_align_forward_cpu_fast<T> : minidl::roi_align_forward_cpu<T>;
  launch(in, input.shape(0), c, input.shape(2), input.shape(3), r, k, spatial_scale, pooled_h,
         pooled_w, sampling_ratio, aligned, out);
}

// grad_input (N, C, H, W), zeroed by the caller: the gradients are added into it.
template <typename T>
void roi_align_backward(py::array grad_output, py::array rois, py::array grad_input,
                        double spatial_scale, index_t sampling_ratio, bool aligned, bool fast) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  check_rois<T>(rois, grad_output.shape(0), "roi_align backward");
  minidl::check_roi_params(spatial_scale, grad_output.shape(2), grad_output.shape(3),
                           "roi_align backward");
  minidl::check_sampling_ratio(sampling_ratio, "roi_align backward");
  minidl::check_ndim(grad_input, 4, "grad_input");
  const index_t c = grad_output.shape(1);
  const index_t batch = grad_input.shape(0), height = grad_input.shape(2), width = grad_input.shape(3);
  minidl::check_roi_sizes(grad_output.shape(0), batch, c, height, width, grad_output.shape(2),
                          grad_output.shape(3), "roi_align backward");
  T* gi = output_of<T>(grad_input, {batch, c, height, width}, "roi_align backward", "grad_input");
  auto go = static_cast<const T*>(grad_output.data());
  auto r = static_cast<const T*>(rois.data());
  py::gil_scoped_release release;
  const auto launch = fast ? minidl::roi_align_backward_cpu_fast<T> : minidl::roi_align_backward_cpu<T>;
  launch(go, r, grad_output.shape(0), batch, c, height, width, spatial_scale, grad_output.shape(2),
         grad_output.shape(3), sampling_ratio, aligned, gi);
}

void bind_roi_align_cpu(py::module_& m) {
  m.def(
      "roi_align_forward",
      [](py::array input, py::array rois, py::array output, double spatial_scale,
         index_t sampling_ratio, bool aligned, bool fast) {
        minidl::dispatch_float(input, "input", [&](auto t) {
          roi_align_forward<decltype(t)>(input, rois, output, spatial_scale, sampling_ratio,
                                         aligned, fast);
        });
      },
      py::arg("input"), py::arg("rois"), py::arg("output"), py::arg("spatial_scale"),
      py::arg("sampling_ratio"), py::arg("aligned"), py::arg("fast") = true,
      "Writes output (K, C, pooled_h, pooled_w). fast=False: the loop over the shared body "
      "(the GPU's code).");
  m.def(
      "roi_align_backward",
      [](py::array grad_output, py::array rois, py::array grad_input, double spatial_scale,
         index_t sampling_ratio, bool aligned, bool fast) {
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          roi_align_backward<decltype(t)>(grad_output, rois, grad_input, spatial_scale,
                                          sampling_ratio, aligned, fast);
        });
      },
      py::arg("grad_output"), py::arg("rois"), py::arg("grad_input"), py::arg("spatial_scale"),
      py::arg("sampling_ratio"), py::arg("aligned"), py::arg("fast") = true,
      "Adds the gradients into grad_input (N, C, H, W), zeroed by the caller; deterministic. "
      "fast=False: the loop over the shared body.");
}
