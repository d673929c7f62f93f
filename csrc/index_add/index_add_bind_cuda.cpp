// index_add_bind_cuda.cpp — minidl._C_cuda's binding of the index_add launchers (compiled by g++).
//
// As every CUDA binding (csrc/bind_cuda.cpp): device pointers as integers, sizes as ints, the
// CuPy stream as an integer; checked (sizes, products, dtype code, alignment) before a launch.
#include "common/bind_cuda.h"
#include "index_add/index_add_cuda.h"

void bind_index_add_cuda(py::module_& m) {
  m.def(
      "index_add",
      [](ptr_t index, ptr_t src, ptr_t out, index_t n, index_t rows, index_t inner, int dtype_code,
         ptr_t stream) {
        const index_t size = element_size(dtype_code);
        minidl::check(n >= 0 && rows >= 0 && inner >= 0, "index_add: n, rows and inner must be >= 0");
        minidl::checked_mul(n, inner, "index_add: the size of src (n * inner)");
        minidl::checked_mul(rows, inner, "index_add: the size of out (rows * inner)");
        check_launch(inner, "index_add");
        check_pointers(8, {{index, "index"}});
        check_pointers(size, {{src, "src"}, {out, "out"}});
        py::gil_scoped_release release;
        minidl::index_add_cuda(index, n, src, out, rows, inner, dtype_code, stream);
      },
      py::arg("index"), py::arg("src"), py::arg("out"), py::arg("n"), py::arg("rows"),
      py::arg("inner"), py::arg("dtype_code"), py::arg("stream"));

}
