// index_add_cpu.cpp — OpenMP loop over columns calling the shared body (index_add.h).
#include "index_add_cpu.h"

#include "index_add.h"

namespace minidl {

template <typename T>
void index_add_cpu(const index_t* index, index_t n, const T* src, T* out, index_t rows,
                   index_t inner) {
#pragma omp parallel for schedule(static) if (inner * n > 32768)
  for (index_t j = 0; j < inner; ++j) index_add_column(index, n, src, out, rows, inner, j);
}

template void index_add_cpu<float>(const index_t*, index_t, const float*, float*, index_t, index_t);
template void index_add_cpu<double>(const index_t*, index_t, const double*, double*, index_t,
                                    index_t);
}  // namespace minidl
