// roi_pool_bind_cpu.cpp — minidl._C's binding of roi_pool: RoI max pooling (minidl/ops/roi_pool.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "common/roi_checks.h"
#include "roi_pool/roi_pool_cpu.h"

// output and argmax (K, C, pooled_h, pooled_w), allocated by the caller: pooled_h/w are their sizes.
template <typename T>
void roi_pool_forward(py::array input, py::array rois, py::array output, py::array argmax,
                      double spatial_scale) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  check_rois<T>(rois, -1, "roi_pool");
  minidl::check_ndim(output, 4, "output");
  const index_t k = rois.shape(0), c = input.shape(1);
  const index_t pooled_h = output.shape(2), pooled_w = output.shape(3);
  minidl::check_roi_params(spatial_scale, pooled_h, pooled_w, "roi_pool");
  minidl::check_roi_sizes(k, input.shape(0), c, input.shape(2), input.shape(3), pooled_h, pooled_w,
                          "roi_pool");
  T* out = output_of<T>(output, {k, c, pooled_h, pooled_w}, "roi_pool", "output");
  index_t* am = output_of<index_t>(argmax, {k, c, pooled_h, pooled_w}, "roi_pool", "argmax");
  auto in = static_cast<const T*>(input.data());
  auto r = static_cast<const T*>(rois.data());
  py::gil_scoped_release release;
  minidl::roi_pool_forward_cpu<T>(in, input.shape(0), c, input.shape(2), input.shape(3), r, k,
                                  spatial_scale, pooled_h, pooled_w, out, am);
}

// grad_input (N, C, H, W), zeroed by the caller: the gradients are added into it.
template <typename T>
void roi_pool_backward(py::array grad_output, py::array argmax, py::array rois,
                       py::array grad_input) {
  minidl::check_array<T>(grad_output, "grad_output");
  minidl::check_ndim(grad_output, 4, "grad_output");
  minidl::check_array<index_t>(argmax, "argmax");
  minidl::check(argmax.ndim() == 4 && std::equal(argmax.shape(), argmax.shape() + 4, grad_output.shape()),
                "roi_pool backward: argmax shape " + minidl::shape_str(argmax) +
                    " differs from grad_output shape " + minidl::shape_str(grad_output));
  check_rois<T>(rois, grad_output.shape(0), "roi_pool backward");
  minidl::check_ndim(grad_input, 4, "grad_input");
  const index_t c = grad_output.shape(1);
  const index_t batch = grad_input.shape(0), height = grad_input.shape(2), width = grad_input.shape(3);
  minidl::check_roi_sizes(grad_output.shape(0), batch, c, height, width, grad_output.shape(2),
                          grad_output.shape(3), "roi_pool backward");
  T* gi = output_of<T>(grad_input, {batch, c, height, width}, "roi_pool backward", "grad_input");
  auto go = static_cast<const T*>(grad_output.data());
  auto am = static_cast<const index_t*>(argmax.data());
  auto r = static_cast<const T*>(rois.data());
  py::gil_scoped_release release;
  minidl::roi_pool_backward_cpu<T>(go, am, r, grad_output.shape(0), batch, c, height, width,
                                   grad_output.shape(2), grad_output.shape(3), gi);
}

void bind_roi_pool_cpu(py::module_& m) {
  m.def(
      "roi_pool_forward",
      [](py::array input, py::array rois, py::array output, py::array argmax, double spatial_scale) {
        minidl::dispatch_float(input, "input", [&](auto t) {
          roi_pool_forward<decltype(t)>(input, rois, output, argmax, spatial_scale);
        });
      },
      py::arg("input"), py::arg("rois"), py::arg("output"), py::arg("argmax"),
      py::arg("spatial_scale"),
      "Writes output and argmax (int64), both (K, C, pooled_h, pooled_w).");
  m.def(
      "roi_pool_backward",
      [](py::array grad_output, py::array argmax, py::array rois, py::array grad_input) {
        minidl::dispatch_float(grad_output, "grad_output", [&](auto t) {
          roi_pool_backward<decltype(t)>(grad_output, argmax, rois, grad_input);
        });
      },
      py::arg("grad_output"), py::arg("argmax"), py::arg("rois"), py::arg("grad_input"),
      "Adds the gradients into grad_input (N, C, H, W), zeroed by the caller; deterministic.");
}
