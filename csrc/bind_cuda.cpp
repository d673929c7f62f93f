// bind_cuda.cpp — the pybind11 module minidl._C_cuda: every CUDA launcher, one section per family.
//
// Compiled by g++ (nvcc never sees pybind11): the launchers' API is plain C++ — device
// pointers as integers (cupy_array.data.ptr), shapes as ints, the CuPy stream as an integer.
// CuPy owns all GPU memory; this module never allocates any. Shapes and dtypes are checked
// on the Python side (minidl/kernels/*.py) where the CuPy arrays are visible.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "index_add/index_add_cuda.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "minidl's CUDA kernels (static cudart; import works without a GPU).";
  m.def("index_add", &minidl::index_add_cuda, py::arg("index"), py::arg("n"), py::arg("src"),
        py::arg("out"), py::arg("rows"), py::arg("inner"), py::arg("dtype_code"),
        py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}
