// nms_bind_cpu.cpp — minidl._C's binding of nms: greedy non-maximum suppression (minidl/ops/nms.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "nms/nms_cpu.h"

template <typename T>
py::array nms_binding(py::array boxes, py::array scores, double iou_threshold, py::object labels,
                      bool fast) {
  minidl::check_array<T>(boxes, "boxes");
  minidl::check(boxes.ndim() == 2 && boxes.shape(1) == 4,
                "nms: boxes must have shape (N, 4), got " + minidl::shape_str(boxes));
  const index_t n = boxes.shape(0);
  minidl::check_array<T>(scores, "scores");
  minidl::check(scores.ndim() == 1 && scores.shape(0) == n,
                "nms: scores must have shape (" + std::to_string(n) + ",), got " +
                    minidl::shape_str(scores));
  minidl::check(!std::isnan(iou_threshold), "nms: iou_threshold must be a number, got NaN");
  const index_t* label_ptr = nullptr;
  py::array label_array;
  if (!labels.is_none()) {
    if (!py::isinstance<py::array>(labels)) throw py::type_error("nms: labels must be None or an int64 array");
    label_array = py::reinterpret_borrow<py::array>(labels);
    minidl::check_array<index_t>(label_array, "labels");
    minidl::check(label_array.ndim() == 1 && label_array.shape(0) == n,
                  "nms: labels must have shape (" + std::to_string(n) + ",), got " +
                      minidl::shape_str(label_array));
    label_ptr = static_cast<const index_t*>(label_array.data());
  }
  std::vector<index_t> keep(n);
  index_t kept = 0;
  {
    py::gil_scoped_release release;
    kept = (fast ? minidl::nms_cpu_fast<T> : minidl::nms_cpu<T>)(
        static_cast<const T*>(boxes.data()), static_cast<const T*>(scores.data()), label_ptr, n,
        iou_threshold, keep.data());
  }
  py::array_t<index_t> result(kept);
  std::copy_n(keep.data(), kept, result.mutable_data());
  return result;
}

void bind_nms_cpu(py::module_& m) {
  m.def(
      "nms",
      [](py::array boxes, py::array scores, double iou_threshold, py::object labels, bool fast) {
        py::array keep;
        minidl::dispatch_float(boxes, "boxes", [&](auto t) {
          keep = nms_binding<decltype(t)>(boxes, scores, iou_threshold, labels, fast);
        });
        return keep;
      },
      py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"), py::arg("labels") = py::none(),
      py::arg("fast") = true,
      "Greedy NMS: int64 indices of the kept boxes by decreasing score (stable). labels (N,) "
      "int64: boxes of different labels never suppress each other. fast=False: the textbook "
      "form (every suppression word by the body of nms.h, then the walk: the GPU's steps).");
}
