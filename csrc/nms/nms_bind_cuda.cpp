// nms_bind_cuda.cpp — minidl._C_cuda's binding of the nms launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "nms/nms_cuda.h"

void bind_nms_cuda(py::module_& m) {
  m.def(
      "nms_mask",
      [](ptr_t x1, ptr_t y1, ptr_t x2, ptr_t y2, ptr_t area, ptr_t label, ptr_t mask, index_t n,
         double iou_threshold, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check(n >= 0, "nms_mask: n must be >= 0, got " + std::to_string(n));
        check_pointers(size, {{x1, "x1"}, {y1, "y1"}, {x2, "x2"}, {y2, "y2"}, {area, "area"}});
        check_pointers(8, {{label, "label"}, {mask, "mask"}});
        py::gil_scoped_release release;  // (the launcher refuses more boxes than one grid holds)
        minidl::nms_mask_cuda(x1, y1, x2, y2, area, label, n, iou_threshold, dtype_code, mask,
                              stream);
      },
      py::arg("x1"), py::arg("y1"), py::arg("x2"), py::arg("y2"), py::arg("area"), py::arg("label"),
      py::arg("mask"), py::arg("n"), py::arg("iou_threshold"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "nms_keep",
      [](ptr_t mask, ptr_t removed, ptr_t keep, index_t n, ptr_t stream) {
        minidl::check(n >= 0, "nms_keep: n must be >= 0, got " + std::to_string(n));
        check_pointers(8, {{mask, "mask"}, {removed, "removed"}});
        py::gil_scoped_release release;
        minidl::nms_keep_cuda(mask, n, removed, keep, stream);
      },
      py::arg("mask"), py::arg("removed"), py::arg("keep"), py::arg("n"), py::arg("stream"));
}
