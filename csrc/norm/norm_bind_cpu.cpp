// norm_bind_cpu.cpp — minidl._C's binding of norm: batch / instance normalization (minidl/kernels/norm.py).
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "norm/norm_cpu.h"

// x (N, C, ...) of dtype T; same-shaped dy / out / dx; statistics (groups,) with groups = C
// (batch norm) or N*C (instance norm); weight / bias (C,) or None.
template <typename T>
minidl::NormGeometry norm_geometry(const py::array& x, bool per_instance) {
  minidl::check_array<T>(x, "x");
  minidl::check(x.ndim() >= 2, "norm: x must have shape (N, C, ...), got " + minidl::shape_str(x));
  index_t plane = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) plane *= x.shape(d);
  return {x.shape(0), x.shape(1), plane, per_instance};
}

template <typename T>
const T* vector_of(const py::array& a, index_t length, const char* name) {
  minidl::check_array<T>(a, name);
  minidl::check(a.ndim() == 1 && a.shape(0) == length,
                std::string("norm: ") + name + " has shape " + minidl::shape_str(a) +
                    ", expected (" + std::to_string(length) + ",)");
  return static_cast<const T*>(a.data());
}

template <typename T>
T* mutable_vector_of(py::array& a, index_t length, const char* name) {
  vector_of<T>(a, length, name);
  return static_cast<T*>(a.mutable_data());
}

// weight / bias: None -> nullptr (gamma = 1, beta = 0). Only an ndarray is accepted: casting a
// list would build a temporary array that dies before the kernel reads it.
template <typename T>
const T* optional_vector_of(const py::object& a, index_t length, const char* name) {
  if (a.is_none()) return nullptr;
  if (!py::isinstance<py::array>(a))
    throw py::type_error(std::string("norm: ") + name + " must be an ndarray or None");
  return vector_of<T>(py::reinterpret_borrow<py::array>(a), length, name);
}

// relu_out (a fused ReLU's output, shaped as x) -> its data, or None -> nullptr (no ReLU fused).
template <typename T>
const T* optional_like(const py::object& a, const py::array& x, const char* name) {
  if (a.is_none()) return nullptr;
  if (!py::isinstance<py::array>(a))
    throw py::type_error(std::string("norm: ") + name + " must be an ndarray or None");
  const auto array = py::reinterpret_borrow<py::array>(a);
  check_shape_like<T>(array, x, "norm", name);
  return static_cast<const T*>(array.data());
}

// The geometry of x and its statistics (groups,), checked: what every pass after the first takes.
template <typename T>
struct NormInputs {
  minidl::NormGeometry g;
  index_t groups;
  const T *x, *mean, *var;
};

template <typename T>
NormInputs<T> norm_inputs(const py::array& x, const py::array& mean, const py::array& var,
                          bool per_instance) {
  const auto g = norm_geometry<T>(x, per_instance);
  const index_t groups = minidl::norm_groups(g);
  return {g, groups, static_cast<const T*>(x.data()), vector_of<T>(mean, groups, "mean"),
          vector_of<T>(var, groups, "var")};
}

void norm_statistics(py::array x, py::array mean, py::array var, bool per_instance) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto g = norm_geometry<T>(x, per_instance);
    const index_t groups = minidl::norm_groups(g);
    minidl::check(g.batch * g.plane > 0, "norm: x has no values per group: " + minidl::shape_str(x));
    auto m = mutable_vector_of<T>(mean, groups, "mean");
    auto v = mutable_vector_of<T>(var, groups, "var");
    auto x_ptr = static_cast<const T*>(x.data());
    py::gil_scoped_release release;
    minidl::norm_statistics_cpu<T>(x_ptr, g, m, v);
  });
}

void norm_forward(py::array x, py::array mean, py::array var, py::object weight, py::object bias,
                  py::array out, double eps, bool per_instance, bool relu) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto in = norm_inputs<T>(x, mean, var, per_instance);
    check_shape_like<T>(out, x, "norm", "out");
    auto w = optional_vector_of<T>(weight, in.g.channels, "weight");
    auto b = optional_vector_of<T>(bias, in.g.channels, "bias");
    auto out_ptr = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release release;
    minidl::norm_forward_cpu<T>(in.x, in.g, in.mean, in.var, w, b, T(eps), relu, out_ptr);
  });
}

void norm_backward_sums(py::array dy, py::object relu_out, py::array x, py::array mean,
                        py::array var, py::array sum_dy, py::array sum_dy_xhat, double eps,
                        bool per_instance) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto in = norm_inputs<T>(x, mean, var, per_instance);
    check_shape_like<T>(dy, x, "norm", "dy");
    auto gate = optional_like<T>(relu_out, x, "relu_out");
    auto s = mutable_vector_of<T>(sum_dy, in.groups, "sum_dy");
    auto s_xhat = mutable_vector_of<T>(sum_dy_xhat, in.groups, "sum_dy_xhat");
    auto dy_ptr = static_cast<const T*>(dy.data());
    py::gil_scoped_release release;
    minidl::norm_backward_sums_cpu<T>(dy_ptr, gate, in.x, in.g, in.mean, in.var, T(eps), s,
                                      s_xhat);
  });
}

// The backward's dx passes: x and its statistics, dy and dx shaped as x, a fused ReLU's output
// (or None) and the weight (or None), checked — what norm_backward_input and norm_backward share.
template <typename T>
struct NormInputGradientArrays {
  NormInputs<T> in;
  const T *dy, *gate, *weight;
  T* dx;
};

template <typename T>
NormInputGradientArrays<T> norm_input_gradient_arrays(const py::array& dy, const py::object& relu_out,
                                                      const py::array& x, const py::array& mean,
                                                      const py::array& var, const py::object& weight,
                                                      py::array& dx, bool per_instance) {
  const auto in = norm_inputs<T>(x, mean, var, per_instance);
  check_shape_like<T>(dy, x, "norm", "dy");
  check_shape_like<T>(dx, x, "norm", "dx");
  return {in, static_cast<const T*>(dy.data()), optional_like<T>(relu_out, x, "relu_out"),
          optional_vector_of<T>(weight, in.g.channels, "weight"), static_cast<T*>(dx.mutable_data())};
}

void norm_backward_input(py::array dy, py::object relu_out, py::array x, py::array mean,
                         py::array var, py::object weight, py::array sum_dy,
                         py::array sum_dy_xhat, py::array dx, double eps, bool input_stats,
                         bool per_instance) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto a = norm_input_gradient_arrays<T>(dy, relu_out, x, mean, var, weight, dx, per_instance);
    auto s = vector_of<T>(sum_dy, a.in.groups, "sum_dy");
    auto s_xhat = vector_of<T>(sum_dy_xhat, a.in.groups, "sum_dy_xhat");
    py::gil_scoped_release release;
    minidl::norm_backward_input_cpu<T>(a.dy, a.gate, a.in.x, a.in.g, a.in.mean, a.in.var, a.weight,
                                       T(eps), s, s_xhat, input_stats, a.dx);
  });
}

void norm_backward(py::array dy, py::object relu_out, py::array x, py::array mean, py::array var,
                   py::object weight, py::array sum_dy, py::array sum_dy_xhat, py::array dx,
                   double eps, bool per_instance) {
  minidl::dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const auto a = norm_input_gradient_arrays<T>(dy, relu_out, x, mean, var, weight, dx, per_instance);
    auto s = mutable_vector_of<T>(sum_dy, a.in.groups, "sum_dy");
    auto s_xhat = mutable_vector_of<T>(sum_dy_xhat, a.in.groups, "sum_dy_xhat");
    py::gil_scoped_release release;
    minidl::norm_backward_cpu<T>(a.dy, a.gate, a.in.x, a.in.g, a.in.mean, a.in.var, a.weight, T(eps),
                                 s, s_xhat, a.dx);
  });
}

void bind_norm_cpu(py::module_& m) {
  m.def("norm_statistics", &norm_statistics, py::arg("x"), py::arg("mean"), py::arg("var"),
        py::arg("per_instance"));
  m.def("norm_forward", &norm_forward, py::arg("x"), py::arg("mean"), py::arg("var"),
        py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("eps"),
        py::arg("per_instance"), py::arg("relu"));
  m.def("norm_backward_sums", &norm_backward_sums, py::arg("dy"), py::arg("relu_out"),
        py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("sum_dy"), py::arg("sum_dy_xhat"),
        py::arg("eps"), py::arg("per_instance"));
  m.def("norm_backward_input", &norm_backward_input, py::arg("dy"), py::arg("relu_out"),
        py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("sum_dy"),
        py::arg("sum_dy_xhat"), py::arg("dx"), py::arg("eps"), py::arg("input_stats"),
        py::arg("per_instance"));
  m.def("norm_backward", &norm_backward, py::arg("dy"), py::arg("relu_out"), py::arg("x"),
        py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("sum_dy"),
        py::arg("sum_dy_xhat"), py::arg("dx"), py::arg("eps"), py::arg("per_instance"));
}
