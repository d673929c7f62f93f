// roi_pool_harness.cpp — the CPU launcher and pybind11 binding around a *student's* RoI-pool body.
//
// The C++ part of the detection assignment (minidl.grade.kernel.build_kernel compiles this file
// into a throw-away module). It mirrors csrc/roi_pool/roi_pool_cpu.cpp + csrc/bind_cpu.cpp: an
// OpenMP loop over RoIs (the "CPU launcher") that calls a per-element body once per output
// cell. The body is the student's, `student::roi_pool_cell` from roi_pool_cell.h (found on the
// include path the build adds); roi_pool_harness.cu calls the very same body from a CUDA kernel.
//
// Given to the student: minidl::roi_pool_geometry (the RoI's corners rounded to feature
// positions, its bin size). Written by the student: the bin's window and its max + argmax.
//
// Module: roi_pool_forward(input (N, C, H, W), rois (K, 5), pooled_h, pooled_w, spatial_scale)
//         -> (output (K, C, pooled_h, pooled_w), argmax (K, C, pooled_h, pooled_w) int64).
#include <cmath>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/checks.h"
#include "common/host_device.h"
#include "common/roi_common.h"
#include "roi_pool/roi_pool.h"  // only for roi_pool_geometry / RoiPoolGeometry (given)

// The stub's placeholder, should the unfinished header ever reach the compiler (build_kernel
// refuses it before): an error when the body is instantiated, naming the function.
#define MINIDL_TODO(function) \
  static_assert(sizeof(T) == 0, function ": replace the TODO with your code")
#include "roi_pool_cell.h"  // the student's body

#ifndef MODULE_NAME
#error "compile with -DMODULE_NAME=<name> (minidl.grade.kernel.build_kernel does)"
#endif

namespace py = pybind11;
using minidl::index_t;

// The CPU launcher: one RoI per iteration of the parallel loop; its geometry is computed once,
// then the student's body fills every (channel, bin) cell of that RoI. The CUDA launcher
// (roi_pool_harness.cu) instead gives every cell its own thread — same body, same results.
template <typename T>
void roi_pool_forward_loop(const T* input, index_t batch, index_t channels, index_t height,
                           index_t width, const T* rois, index_t num_rois, T scale,
                           index_t pooled_h, index_t pooled_w, T* output, index_t* argmax) {
  const index_t plane = height * width, cells = pooled_h * pooled_w;
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t k = 0; k < num_rois; ++k) {
    const minidl::RoiPoolGeometry<T> g =
        minidl::roi_pool_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w);
    // An invalid RoI (g.valid false) points at image 0: the body must pool nothing from it.
    const T* image = input + (g.valid ? g.batch : 0) * channels * plane;
    for (index_t c = 0; c < channels; ++c)
      for (index_t p = 0; p < cells; ++p) {
        const index_t cell = (k * channels + c) * cells + p;  // (k, c, ph, pw) in row-major order
        student::roi_pool_cell<T>(image + c * plane, height, width, g, p / pooled_w, p % pooled_w,
                                  output + cell, argmax + cell);
      }
  }
}

// The binding: check every argument before touching memory (a bad call raises
// ValueError/TypeError naming the argument), then run the loop without the GIL.
template <typename T>
py::tuple roi_pool_forward(py::array input, py::array rois, index_t pooled_h, index_t pooled_w,
                           double spatial_scale) {
  minidl::check_array<T>(input, "input");
  minidl::check_ndim(input, 4, "input");
  minidl::check_array<T>(rois, "rois");
  minidl::check(rois.ndim() == 2 && rois.shape(1) == 5,
                "rois: expected shape (K, 5) = (batch index, x1, y1, x2, y2), got " +
                    minidl::shape_str(rois));
  minidl::check(pooled_h >= 1 && pooled_w >= 1, "pooled_h, pooled_w: must be >= 1");
  minidl::check(std::isfinite(spatial_scale) && spatial_scale >= 0,
                "spatial_scale: must be finite and >= 0");
  const index_t k = rois.shape(0), c = input.shape(1);
  py::array_t<T> output({k, c, pooled_h, pooled_w});
  py::array_t<index_t> argmax({k, c, pooled_h, pooled_w});
  auto in = static_cast<const T*>(input.data());
  auto r = static_cast<const T*>(rois.data());
  T* out = output.mutable_data();
  index_t* am = argmax.mutable_data();
  {
    py::gil_scoped_release release;
    roi_pool_forward_loop<T>(in, input.shape(0), c, input.shape(2), input.shape(3), r, k,
                             static_cast<T>(spatial_scale),  // scaled in the dtype, like minidl
                             pooled_h, pooled_w, out, am);
  }
  return py::make_tuple(output, argmax);
}

PYBIND11_MODULE(MODULE_NAME, m) {
  m.doc() = "A student's RoI max pooling body (roi_pool_cell.h) in the CPU launcher";
  m.def(
      "roi_pool_forward",
      [](py::array input, py::array rois, index_t pooled_h, index_t pooled_w,
         double spatial_scale) {
        py::tuple result;
        minidl::dispatch_float(input, "input", [&](auto zero) {
          result = roi_pool_forward<decltype(zero)>(input, rois, pooled_h, pooled_w, spatial_scale);
        });
        return result;
      },
      py::arg("input"), py::arg("rois"), py::arg("pooled_h"), py::arg("pooled_w"),
      py::arg("spatial_scale"),
      "(output, argmax) of RoI max pooling: input (N, C, H, W), rois (K, 5) of the same dtype.");
}
