// nms_bind_cpu.cpp — minidl._C's binding of nms: greedy non-maximum suppression (minidl/ops/nms.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "nms/nms_cpu.h"

// Returns how many boxes were kept: their indices fill keep[0 .. count), by decreasing score.
template <typename T>
index_t nms_binding(py::array boxes, py::array scores, py::object labels, py::array keep,
                    double iou_threshold, bool fast) {
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
  if (!labels.is_none()) {
    if (!py::isinstance<py::array>(labels)) throw py::type_error("nms: labels must be None or an int64 array");
    const auto label_array = py::reinterpret_borrow<py::array>(labels);
    minidl::check_array<index_t>(label_array, "labels");
    minidl::check(label_array.ndim() == 1 && label_array.shape(0) == n,
                  "nms: labels must have shape (" + std::to_string(n) + ",), got " +
                      minidl::shape_str(label_array));
    label_ptr = static_cast<const index_t*>(label_array.data());
  }
  index_t* keep_ptr = output_of<index_t>(keep, {n}, "nms", "keep");
  if (!fast)  // the textbook form holds every suppression word: n * ceil(n/64) of them
    minidl::checked_mul(n, (n + 63) / 64, "nms: the textbook form's mask (n * ceil(n/64) words)");
  py::gil_scoped_release release;
  return (fast ? minidl::nms_cpu_fast<T> : minidl::nms_cpu<T>)(
      static_cast<const T*>(boxes.data()), static_cast<const T*>(scores.data()), label_ptr, n,
      iou_threshold, keep_ptr);
}

void bind_nms_cpu(py::module_& m) {
  m.def(
      "nms",
      [](py::array boxes, py::array scores, py::object labels, py::array keep,
         double iou_threshold, bool fast) {
        index_t count = 0;
        minidl::dispatch_float(boxes, "boxes", [&](auto t) {
          count = nms_binding<decltype(t)>(boxes, scores, labels, keep, iou_threshold, fast);
        });
        return count;
      },
      py::arg("boxes"), py::arg("scores"), py::arg("labels"), py::arg("keep"),
      py::arg("iou_threshold"), py::arg("fast") = true,
      "Greedy NMS: writes the int64 indices of the kept boxes, by decreasing score (stable), to "
      "keep[:count] (keep: (N,) int64) and returns count. labels (N,) int64 or None: boxes of "
      "different labels never suppress each other. fast=False: the textbook form (every "
      "suppression word by the body of nms.h, then the walk: the GPU's steps).");
}
