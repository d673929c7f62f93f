// bind_cpu.h — what every family's CPU binding (csrc/<kernel>/<kernel>_bind_cpu.cpp) shares:
// pybind11, the checks of common/checks.h, the RoI ops' two helpers, and the one function per
// family that csrc/bind_cpu.cpp calls to register it in minidl._C.
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/checks.h"

namespace py = pybind11;
using minidl::index_t;

void bind_index_add_cpu(py::module_& m);
void bind_im2col_cpu(py::module_& m);
void bind_norm_cpu(py::module_& m);
void bind_nms_cpu(py::module_& m);
void bind_roi_pool_cpu(py::module_& m);
void bind_roi_align_cpu(py::module_& m);
void bind_adaptive_max_pool_cpu(py::module_& m);
void bind_winograd_cpu(py::module_& m);
void bind_direct_conv_cpu(py::module_& m);
void bind_relu_cpu(py::module_& m);

// An output array allocated by the caller (minidl/kernels/__init__.py: the calling convention):
// of dtype T, aligned, C-contiguous, writeable and of exactly `shape`. Returns its data.
template <typename T>
T* output_of(py::array& a, std::initializer_list<index_t> shape, const char* op, const char* name) {
  minidl::check_array<T>(a, name);
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  py::ssize_t d = 0;
  std::string expected = "(";
  for (index_t s : shape) {
    same = same && d < a.ndim() && a.shape(d) == s;
    expected += (d++ ? ", " : "") + std::to_string(s);
  }
  expected += shape.size() == 1 ? ",)" : ")";
  minidl::check(same, std::string(op) + ": " + name + " must have shape " + expected + ", got " +
                          minidl::shape_str(a));
  minidl::check(a.writeable(), std::string(op) + ": " + name + " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

// An array of dtype T, aligned, C-contiguous and of exactly `like`'s shape (any number of
// dimensions): an elementwise op's output or second input (norm's and relu's bindings).
template <typename T>
void check_shape_like(const py::array& a, const py::array& like, const std::string& op,
                      const char* name) {
  minidl::check_array<T>(a, name);
  bool same = a.ndim() == like.ndim();
  for (py::ssize_t d = 0; same && d < like.ndim(); ++d) same = a.shape(d) == like.shape(d);
  minidl::check(same, op + ": " + name + " has shape " + minidl::shape_str(a) + ", expected " +
                          minidl::shape_str(like));
}

// An optional per-filter bias (a conv's): None -> nullptr, else an aligned, C-contiguous T array
// of shape (filters,). Only an ndarray is accepted: casting a list would build a temporary array
// that dies before the kernel reads it.
template <typename T>
const T* optional_bias_of(const py::object& bias, index_t filters, const char* op) {
  if (bias.is_none()) return nullptr;
  if (!py::isinstance<py::array>(bias))
    throw py::type_error(std::string(op) + ": bias must be an ndarray or None");
  const auto b = py::reinterpret_borrow<py::array>(bias);
  minidl::check_array<T>(b, "bias");
  minidl::check(b.ndim() == 1 && b.shape(0) == filters,
                std::string(op) + ": bias has shape " + minidl::shape_str(b) + ", expected (" +
                    std::to_string(filters) + ",)");
  return static_cast<const T*>(b.data());
}

// ---- the RoI ops (roi_pool, roi_align) and adaptive max pooling -------------------------------
// These bindings check dtypes, shapes and parameters (the RoI ops' bounds on output_size and
// sampling_ratio: common/roi_checks.h). They do *not* check the values of boxes,
// RoIs or argmax switches (NaN, inf, batch indices out of range): the op layer
// (minidl/ops/) rejects those with a ValueError, and the kernel bodies are written so that any
// value gives a defined result and never an out-of-range access (tests call these directly).
template <typename T>
void check_rois(const py::array& rois, index_t count, const char* op) {
  minidl::check_array<T>(rois, "rois");
  minidl::check(rois.ndim() == 2 && rois.shape(1) == 5,
                std::string(op) + ": rois must have shape (K, 5) = (batch index, x1, y1, x2, y2), got " +
                    minidl::shape_str(rois));
  if (count >= 0)
    minidl::check(rois.shape(0) == count, std::string(op) + ": rois has " +
                                              std::to_string(rois.shape(0)) + " rows, expected " +
                                              std::to_string(count));
}
