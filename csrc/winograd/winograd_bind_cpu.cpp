// winograd_bind_cpu.cpp — minidl._C's binding of Winograd F(2×2, 3×3)'s data transforms
// (minidl/kernels/winograd.py, minidl/functional/conv_winograd.py).
//
// As every binding (csrc/bind_cpu.cpp): arrays (inputs, then the caller's outputs), then
// options; dtypes, shapes and every derived size checked before any memory is touched.
#include "common/bind_cpu.h"
#include "winograd/winograd_checks.h"
#include "winograd/winograd_cpu.h"

template <typename T>
void winograd_input_transform(py::array x, py::array V, index_t pad_h, index_t pad_w) {
  minidl::check_array<T>(x, "x");
  minidl::check_ndim(x, 4, "x");
  const auto g = minidl::checked_winograd_geometry(x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                                   pad_h, pad_w, "winograd_input_transform");
  T* v = output_of<T>(V, {16, g.channels, g.patches}, "winograd_input_transform", "V");
  auto x_ptr = static_cast<const T*>(x.data());
  py::gil_scoped_release release;
  minidl::winograd_input_transform_cpu<T>(x_ptr, g, v);
}

template <typename T>
void winograd_output_transform(py::array M, py::object bias, py::array y) {
  minidl::check_array<T>(M, "M");
  minidl::check_ndim(M, 3, "M");
  minidl::check_ndim(y, 4, "y");
  const index_t filters = y.shape(1);
  const auto g = minidl::checked_winograd_output_geometry(y.shape(0), filters, y.shape(2),
                                                          y.shape(3), "winograd_output_transform");
  minidl::check(M.shape(0) == 16 && M.shape(1) == filters && M.shape(2) == g.patches,
                "winograd_output_transform: M has shape " + minidl::shape_str(M) + ", expected (16, " +
                    std::to_string(filters) + ", " + std::to_string(g.patches) + ")");
  const T* bias_ptr = nullptr;
  if (!bias.is_none()) {
    if (!py::isinstance<py::array>(bias))
      throw py::type_error("winograd_output_transform: bias must be an ndarray or None");
    const auto b = py::reinterpret_borrow<py::array>(bias);
    minidl::check_array<T>(b, "bias");
    minidl::check(b.ndim() == 1 && b.shape(0) == filters,
                  "winograd_output_transform: bias has shape " + minidl::shape_str(b) +
                      ", expected (" + std::to_string(filters) + ",)");
    bias_ptr = static_cast<const T*>(b.data());
  }
  T* out = output_of<T>(y, {g.batch, filters, g.out_h, g.out_w}, "winograd_output_transform", "y");
  auto m = static_cast<const T*>(M.data());
  py::gil_scoped_release release;
  minidl::winograd_output_transform_cpu<T>(m, g, filters, bias_ptr, out);
}

void bind_winograd_cpu(py::module_& m) {
  m.def(
      "winograd_input_transform",
      [](py::array x, py::array V, index_t pad_h, index_t pad_w) {
        minidl::dispatch_float(x, "x", [&](auto t) {
          winograd_input_transform<decltype(t)>(x, V, pad_h, pad_w);
        });
      },
      py::arg("x"), py::arg("V"), py::arg("pad_h"), py::arg("pad_w"),
      "V[k, c, p] = (Bᵀ d B)[k] of the 4x4 patch d of tile p (csrc/winograd/winograd.h); x (N, C, H, "
      "W), V (16, C, N*tiles_h*tiles_w) written in place.");
  m.def(
      "winograd_output_transform",
      [](py::array M, py::object bias, py::array y) {
        minidl::dispatch_float(M, "M", [&](auto t) {
          winograd_output_transform<decltype(t)>(M, bias, y);
        });
      },
      py::arg("M"), py::arg("bias"), py::arg("y"),
      "y[n, f, 2ty+i, 2tx+j] = (Aᵀ m A)[i, j] + bias[f] with m[k] = M[k, f, p]; M (16, F, P), y (N, F, "
      "out_h, out_w) written in place.");
}
