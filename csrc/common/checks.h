// checks.h — argument checks for the pybind11 bindings (CPU module only: it sees NumPy arrays).
//
// Every binding validates dtype, contiguity and shape *before* touching memory, and throws
// pybind11::value_error / type_error (Python ValueError / TypeError) naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sstream>
#include <string>
#include <vector>

namespace minidl {
namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// Of dtype T (no silent conversion: a float64 gradcheck is never downcast).
template <typename T>
inline void check_dtype(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
}

// Of dtype T and C-contiguous.
template <typename T>
inline void check_array(const py::array& a, const char* name) {
  check_dtype<T>(a, name);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
}

inline void check_ndim(const py::array& a, py::ssize_t ndim, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(ndim) +
                          " dimensions, got shape " + shape_str(a));
}

// Call f(T{}) with T = float or double chosen from the array's dtype; anything else is a
// TypeError. (One entry point per kernel instead of overloads: pybind11 would otherwise stop
// at the first overload whose check throws, or silently convert a copy of an output array.)
template <typename F>
inline void dispatch_float(const py::array& a, const char* name, F&& f) {
  if (a.dtype().is(py::dtype::of<float>())) return f(float{});
  if (a.dtype().is(py::dtype::of<double>())) return f(double{});
  throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

inline void check(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}
}  // namespace minidl
