// index_add_bind_cpu.cpp — minidl._C's binding of index_add: out[index[i], :] += src[i, :].
//
// As every binding (csrc/bind_cpu.cpp): check dtypes, shapes and every derived size before
// touching memory (a bad call raises ValueError/TypeError naming the argument), then release
// the GIL and run the OpenMP launcher; float32 and float64 overloads.
#include "common/bind_cpu.h"
#include "index_add/index_add_cpu.h"

template <typename T>
void index_add(py::array index, py::array src, py::array out) {
  minidl::check_array<T>(out, "out");
  minidl::check_array<T>(src, "src");
  minidl::check_array<index_t>(index, "index");
  minidl::check_ndim(index, 1, "index");
  minidl::check(out.ndim() >= 1 && src.ndim() == out.ndim(),
                "index_add: out and src must have the same number of dimensions (>= 1)");
  minidl::check(src.shape(0) == index.shape(0),
                "index_add: src has " + std::to_string(src.shape(0)) + " rows but index has " +
                    std::to_string(index.shape(0)) + " entries");
  for (py::ssize_t d = 1; d < out.ndim(); ++d)
    minidl::check(src.shape(d) == out.shape(d), "index_add: src shape " + minidl::shape_str(src) +
                                                    " does not match out shape " +
                                                    minidl::shape_str(out) + " after axis 0");
  const index_t rows = out.shape(0), n = index.shape(0);
  const index_t inner = rows ? out.size() / rows : 0;
  auto idx = static_cast<const index_t*>(index.data());
  for (index_t i = 0; i < n; ++i)
    minidl::check(idx[i] >= -rows && idx[i] < rows, "index_add: index " + std::to_string(idx[i]) +
                                                        " is out of range for " +
                                                        std::to_string(rows) + " rows");
  auto src_ptr = static_cast<const T*>(src.data());
  auto out_ptr = static_cast<T*>(out.mutable_data());
  py::gil_scoped_release release;
  minidl::index_add_cpu<T>(idx, n, src_ptr, out_ptr, rows, inner);
}

void bind_index_add_cpu(py::module_& m) {
  m.def(
      "index_add",
      [](py::array index, py::array src, py::array out) {
        minidl::dispatch_float(out, "out", [&](auto t) { index_add<decltype(t)>(index, src, out); });
      },
      py::arg("index"), py::arg("src"), py::arg("out"),
      "out[index[i]] += src[i] (in place), deterministic; float32 or float64.");
}
