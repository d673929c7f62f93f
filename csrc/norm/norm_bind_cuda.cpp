// norm_bind_cuda.cpp — minidl._C_cuda's binding of the norm launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "norm/norm_cuda.h"

void bind_norm_cuda(py::module_& m) {
  m.def(
      "norm_statistics",
      [](ptr_t x, ptr_t mean, ptr_t var, index_t batch, index_t channels, index_t plane,
         bool per_instance, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_statistics");
        check_pointers(size, {{x, "x"}, {mean, "mean"}, {var, "var"}});
        py::gil_scoped_release release;
        minidl::norm_statistics_cuda(x, batch, channels, plane, per_instance, mean, var, dtype_code,
                                     stream);
      },
      py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("batch"), py::arg("channels"),
      py::arg("plane"), py::arg("per_instance"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "norm_forward",
      [](ptr_t x, ptr_t mean, ptr_t var, ptr_t weight, ptr_t bias, ptr_t out, index_t batch,
         index_t channels, index_t plane, double eps, bool per_instance, bool relu,
         int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_forward");
        check_pointers(size, {{x, "x"}, {mean, "mean"}, {var, "var"}, {weight, "weight"},
                              {bias, "bias"}, {out, "out"}});
        py::gil_scoped_release release;
        minidl::norm_forward_cuda(x, batch, channels, plane, per_instance, mean, var, weight, bias,
                                  eps, relu, out, dtype_code, stream);
      },
      py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("weight"), py::arg("bias"),
      py::arg("out"), py::arg("batch"), py::arg("channels"), py::arg("plane"), py::arg("eps"),
      py::arg("per_instance"), py::arg("relu"), py::arg("dtype_code"), py::arg("stream"));
  m.def(
      "norm_backward_sums",
      [](ptr_t dy, ptr_t relu_out, ptr_t x, ptr_t mean, ptr_t var, ptr_t sum_dy, ptr_t sum_dy_xhat,
         index_t batch, index_t channels, index_t plane, double eps, bool per_instance,
         int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_backward_sums");
        check_pointers(size, {{dy, "dy"}, {relu_out, "relu_out"}, {x, "x"}, {mean, "mean"},
                              {var, "var"}, {sum_dy, "sum_dy"}, {sum_dy_xhat, "sum_dy_xhat"}});
        py::gil_scoped_release release;
        minidl::norm_backward_sums_cuda(dy, relu_out, x, batch, channels, plane, per_instance, mean,
                                        var, eps, sum_dy, sum_dy_xhat, dtype_code, stream);
      },
      py::arg("dy"), py::arg("relu_out"), py::arg("x"), py::arg("mean"), py::arg("var"),
      py::arg("sum_dy"), py::arg("sum_dy_xhat"), py::arg("batch"), py::arg("channels"),
      py::arg("plane"), py::arg("eps"), py::arg("per_instance"), py::arg("dtype_code"),
      py::arg("stream"));
  m.def(
      "norm_backward_input",
      [](ptr_t dy, ptr_t relu_out, ptr_t x, ptr_t mean, ptr_t var, ptr_t weight, ptr_t sum_dy,
         ptr_t sum_dy_xhat, ptr_t dx, index_t batch, index_t channels, index_t plane, double eps,
         bool input_stats, bool per_instance, int dtype_code, ptr_t stream) {
        const index_t size = element_size(dtype_code);
        check_norm_sizes(batch, channels, plane, "norm_backward_input");
        check_pointers(size, {{dy, "dy"}, {relu_out, "relu_out"}, {x, "x"}, {mean, "mean"},
                              {var, "var"}, {weight, "weight"}, {dx, "dx"}, {sum_dy, "sum_dy"},
                              {sum_dy_xhat, "sum_dy_xhat"}});
        py::gil_scoped_release release;
        minidl::norm_backward_input_cuda(dy, relu_out, x, batch, channels, plane, per_instance,
                                         mean, var, weight, eps, sum_dy, sum_dy_xhat, input_stats,
                                         dx, dtype_code, stream);
      },
      py::arg("dy"), py::arg("relu_out"), py::arg("x"), py::arg("mean"), py::arg("var"),
      py::arg("weight"), py::arg("sum_dy"), py::arg("sum_dy_xhat"), py::arg("dx"), py::arg("batch"),
      py::arg("channels"), py::arg("plane"), py::arg("eps"), py::arg("input_stats"),
      py::arg("per_instance"), py::arg("dtype_code"), py::arg("stream"));
}
