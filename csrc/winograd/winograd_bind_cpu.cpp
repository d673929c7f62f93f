// winograd_bind_cpu.cpp — minidl._C's binding of Winograd F(2×2, 3×3)'s and F(4×4, 3×3)'s data transforms
// (minidl/kernels/winograd.py, minidl/functional/conv_winograd.py).
//
// As every binding (csrc/bind_cpu.cpp): arrays (inputs, then the caller's outputs), then
// options; dtypes, shapes and every derived size checked before any memory is touched.
#include "common/bind_cpu.h"
#include "winograd/winograd_checks.h"
#include "winograd/winograd_cpu.h"

// A (B, rows, P) array of dtype T, B = (tile + 2)² blocks, whose rows are contiguous within each
// k and whose k-stride (in elements, returned) is at least rows · P: V or M, possibly padded
// between the k.
template <typename T>
index_t k_strided(const py::array& a, index_t tile, index_t rows, index_t patches, const char* op,
                  const char* name) {
  minidl::check_dtype<T>(a, name);
  minidl::check_aligned<T>(a, name);
  const py::ssize_t item = sizeof(T);
  const index_t blocks = (tile + 2) * (tile + 2);
  minidl::check(a.ndim() == 3 && a.shape(0) == blocks && a.shape(1) == rows && a.shape(2) == patches,
                std::string(op) + ": " + name + " has shape " + minidl::shape_str(a) + ", expected (" +
                    std::to_string(blocks) + ", " + std::to_string(rows) + ", " + std::to_string(patches) + ")");
  if (rows * patches == 0) return 0;                        // nothing is read or written
  minidl::check((patches <= 1 || a.strides(2) == item) &&
                    (rows <= 1 || a.strides(1) == patches * item) &&
                    a.strides(0) % item == 0 && a.strides(0) / item >= rows * patches,
                std::string(op) + ": " + name + " must be contiguous within each of its " +
                    std::to_string(blocks) + " blocks (any stride between them), got strides (" +
                    std::to_string(a.strides(0)) +
                    ", " + std::to_string(a.strides(1)) + ", " + std::to_string(a.strides(2)) + ")");
  minidl::checked_mul(blocks - 1, a.strides(0) / item, std::string(op) + ": " + name + "'s extent");
  return a.strides(0) / item;
}

template <typename T>
void winograd_input_transform(py::array x, py::array V, index_t pad_h, index_t pad_w, index_t tile,
                              bool fast) {
  minidl::check_array<T>(x, "x");
  minidl::check_ndim(x, 4, "x");
  auto g = minidl::checked_winograd_geometry(x.shape(0), x.shape(1), x.shape(2), x.shape(3), pad_h,
                                             pad_w, tile, "winograd_input_transform");
  g.k_stride = k_strided<T>(V, tile, g.channels, g.patches, "winograd_input_transform", "V");
  minidl::check(V.writeable(), "winograd_input_transform: V must be writeable");
  T* v = static_cast<T*>(V.mutable_data());
  auto x_ptr = static_cast<const T*>(x.data());
  py::gil_scoped_release release;
  (fast ? minidl::winograd_input_transform_cpu_fast<T> : minidl::winograd_input_transform_cpu<T>)(
      x_ptr, g, v);
}

template <typename T>
void winograd_output_transform(py::array M, py::object bias, py::array y, index_t tile, bool fast) {
  minidl::check_ndim(y, 4, "y");
  const index_t filters = y.shape(1);
  auto g = minidl::checked_winograd_output_geometry(y.shape(0), filters, y.shape(2), y.shape(3),
                                                    tile, "winograd_output_transform");
  g.k_stride = k_strided<T>(M, tile, filters, g.patches, "winograd_output_transform", "M");
  const T* bias_ptr = optional_bias_of<T>(bias, filters, "winograd_output_transform");
  T* out = output_of<T>(y, {g.batch, filters, g.out_h, g.out_w}, "winograd_output_transform", "y");
  auto m = static_cast<const T*>(M.data());
  py::gil_scoped_release release;
  (fast ? minidl::winograd_output_transform_cpu_fast<T> : minidl::winograd_output_transform_cpu<T>)(
      m, g, filters, bias_ptr, out);
}

// dy (N, F, out_h, out_w) -> dM (B, F, P) (blocks contiguous, any stride between them).
template <typename T>
void winograd_output_adjoint(py::array dy, py::array dM, index_t tile, bool fast) {
  minidl::check_array<T>(dy, "dy");
  minidl::check_ndim(dy, 4, "dy");
  const index_t filters = dy.shape(1);
  auto g = minidl::checked_winograd_output_geometry(dy.shape(0), filters, dy.shape(2), dy.shape(3),
                                                    tile, "winograd_output_adjoint");
  g.k_stride = k_strided<T>(dM, tile, filters, g.patches, "winograd_output_adjoint", "dM");
  minidl::check(dM.writeable(), "winograd_output_adjoint: dM must be writeable");
  auto dy_ptr = static_cast<const T*>(dy.data());
  T* out = static_cast<T*>(dM.mutable_data());
  py::gil_scoped_release release;
  (fast ? minidl::winograd_output_adjoint_cpu_fast<T> : minidl::winograd_output_adjoint_cpu<T>)(
      dy_ptr, g, filters, out);
}

// dV (B, C, P) -> dx (N, C, H, W) of the input padded by (pad_h, pad_w).
template <typename T>
void winograd_input_adjoint(py::array dV, py::array dx, index_t pad_h, index_t pad_w, index_t tile,
                            bool fast) {
  minidl::check_ndim(dx, 4, "dx");
  auto g = minidl::checked_winograd_geometry(dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3),
                                             pad_h, pad_w, tile, "winograd_input_adjoint");
  g.k_stride = k_strided<T>(dV, tile, g.channels, g.patches, "winograd_input_adjoint", "dV");
  T* out = output_of<T>(dx, {g.batch, g.channels, g.height, g.width}, "winograd_input_adjoint", "dx");
  auto dv = static_cast<const T*>(dV.data());
  py::gil_scoped_release release;
  (fast ? minidl::winograd_input_adjoint_cpu_fast<T> : minidl::winograd_input_adjoint_cpu<T>)(dv, g, out);
}

void bind_winograd_cpu(py::module_& m) {
  m.def(
      "winograd_output_adjoint",
      [](py::array dy, py::array dM, index_t tile, bool fast) {
        minidl::dispatch_float(dy, "dy", [&](auto t) {
          winograd_output_adjoint<decltype(t)>(dy, dM, tile, fast);
        });
      },
      py::arg("dy"), py::arg("dM"), py::arg("tile") = 2, py::arg("fast") = true,
      "dM[k, f, p] = (A dy Aᵀ)[k] of tile p's m x m output gradients (0 past the edge), m = tile "
      "(2 or 4); dy (N, F, out_h, out_w), dM ((m+2)^2, F, P) written in place.");
  m.def(
      "winograd_input_adjoint",
      [](py::array dV, py::array dx, index_t pad_h, index_t pad_w, index_t tile, bool fast) {
        minidl::dispatch_float(dV, "dV", [&](auto t) {
          winograd_input_adjoint<decltype(t)>(dV, dx, pad_h, pad_w, tile, fast);
        });
      },
      py::arg("dV"), py::arg("dx"), py::arg("pad_h"), py::arg("pad_w"), py::arg("tile") = 2,
      py::arg("fast") = true,
      "dx[n, c, y, x] = the sum of (B dV Bᵀ) over the tiles whose (m+2)x(m+2) patch holds the pixel; "
      "dV ((m+2)^2, C, P), dx (N, C, H, W) written in place.");
  m.def(
      "winograd_input_transform",
      [](py::array x, py::array V, index_t pad_h, index_t pad_w, index_t tile, bool fast) {
        minidl::dispatch_float(x, "x", [&](auto t) {
          winograd_input_transform<decltype(t)>(x, V, pad_h, pad_w, tile, fast);
        });
      },
      py::arg("x"), py::arg("V"), py::arg("pad_h"), py::arg("pad_w"), py::arg("tile") = 2,
      py::arg("fast") = true,
      "V[k, c, p] = (Bᵀ d B)[k] of the (m+2)x(m+2) patch d of tile p, m = tile (2 or 4; "
      "csrc/winograd/winograd.h); x (N, C, H, W), V ((m+2)^2, C, N*tiles_h*tiles_w) written in place "
      "(contiguous within each k).");
  m.def(
      "winograd_output_transform",
      [](py::array M, py::object bias, py::array y, index_t tile, bool fast) {
        minidl::dispatch_float(M, "M", [&](auto t) {
          winograd_output_transform<decltype(t)>(M, bias, y, tile, fast);
        });
      },
      py::arg("M"), py::arg("bias"), py::arg("y"), py::arg("tile") = 2, py::arg("fast") = true,
      "y[n, f, m*ty+i, m*tx+j] = (Aᵀ m A)[i, j] + bias[f] with m[k] = M[k, f, p], m = tile (2 or 4); "
      "M ((m+2)^2, F, P), y (N, F, out_h, out_w) written in place.");
}
