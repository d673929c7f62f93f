// roi_pool_bind_cpu.cpp — minidl._C's binding of roi_pool: RoI max pooling (minidl/ops/roi_pool.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "common/roi_checks.h"
#include "roi_pool/roi_pool_cpu.h"

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

void bind_roi_pool_cpu(py::module_& m) {
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
}
