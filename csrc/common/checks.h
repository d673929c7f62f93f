// checks.h — argument checks for the pybind11 bindings.
//
// Every binding validates dtype, alignment, contiguity and shape *before* touching memory, and
// throws pybind11::value_error / type_error (Python ValueError / TypeError) naming the argument.
// The array checks serve minidl._C (it sees NumPy arrays); the integer checks (checked_mul and
// friends) serve both modules, since _C_cuda receives its sizes as plain ints.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "host_device.h"

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

// Its data pointer is a multiple of alignof(T). NumPy can make views that are not — e.g.
// np.frombuffer(buf, np.float32, offset=1) — and reading a float at an odd address is undefined
// behaviour in C++ (on some CPUs a fault, on x86 a silently slower load that vector code may
// still turn into a crash). A copy (np.ascontiguousarray of such a view) is always aligned.
template <typename T>
inline void check_aligned(const py::array& a, const char* name) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + ": the array's data is not aligned to " +
                          std::to_string(alignof(T)) + " bytes (a view at an odd offset?); pass a copy");
}

// Of dtype T, aligned and C-contiguous.
template <typename T>
inline void check_array(const py::array& a, const char* name) {
  check_dtype<T>(a, name);
  check_aligned<T>(a, name);
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

// ---- sizes: checked arithmetic -------------------------------------------------------------
// Sizes are int64 (index_t), and signed overflow is undefined behaviour: a product such as
// channels * kernel_h * kernel_w that wraps around can come out small — even 0 — and then a
// wrong buffer passes the shape check and the kernel writes far outside it. So every size a
// binding derives from its arguments is computed with these, which raise a ValueError naming
// `what` instead of wrapping (__builtin_*_overflow: GCC and Clang, exact for any int64 values).
inline index_t checked_mul(index_t a, index_t b, const std::string& what) {
  index_t product;
  if (__builtin_mul_overflow(a, b, &product))
    throw py::value_error(what + " overflows a 64-bit size (" + std::to_string(a) + " * " +
                          std::to_string(b) + ")");
  return product;
}

inline index_t checked_add(index_t a, index_t b, const std::string& what) {
  index_t sum;
  if (__builtin_add_overflow(a, b, &sum))
    throw py::value_error(what + " overflows a 64-bit size (" + std::to_string(a) + " + " +
                          std::to_string(b) + ")");
  return sum;
}

// The product of several sizes, e.g. checked_product({n, c, h, w}, "x's size").
inline index_t checked_product(std::initializer_list<index_t> factors, const std::string& what) {
  index_t product = 1;
  for (index_t f : factors) product = checked_mul(product, f, what);
  return product;
}

// The padded height and width of an H×W input under a square kernel with padding (pad_h, pad_w)
// (Winograd's 3×3 tiles, the direct convolution), checked: the padding's range, the sums in int64,
// and a window that fits.
struct PaddedSize {
  index_t height, width;
};
// The padded sizes (H + 2·pad_h, W + 2·pad_w) for a kernel×kernel filter: padding in
// [0, kernel − 1] and a padded input at least as large as the kernel, sums in int64.
inline PaddedSize checked_padded_square(index_t height, index_t width, index_t kernel, index_t pad_h,
                                       index_t pad_w, const std::string& op) {
  const std::string k = std::to_string(kernel);
  check(pad_h >= 0 && pad_h <= kernel - 1 && pad_w >= 0 && pad_w <= kernel - 1,
        op + ": padding must be in [0, " + std::to_string(kernel - 1) + "] for a " + k + "x" + k +
            " kernel, got (" + std::to_string(pad_h) + ", " + std::to_string(pad_w) + ")");
  const PaddedSize padded{checked_add(height, 2 * pad_h, op + ": height + 2 * padding"),
                         checked_add(width, 2 * pad_w, op + ": width + 2 * padding")};
  check(padded.height >= kernel && padded.width >= kernel,
        op + ": the " + k + "x" + k + " kernel is larger than the padded input");
  return padded;
}

inline PaddedSize checked_padded_3x3(index_t height, index_t width, index_t pad_h, index_t pad_w,
                                    const std::string& op) {
  return checked_padded_square(height, width, 3, pad_h, pad_w, op);
}

// lo <= value <= hi, or a ValueError "`name` must be in [lo, hi], got value".
inline void check_range(index_t value, index_t lo, index_t hi, const std::string& name) {
  if (value < lo || value > hi)
    throw py::value_error(name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + std::to_string(value));
}
}  // namespace minidl
