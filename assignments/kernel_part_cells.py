"""Cells of the detection notebook's C++ part: RoI max pooling as one per-element body in C++.

Spliced by assignments/build_notebooks.py at the end of the detection notebook, as Part 4, after
Part 3 where the student wrote ``my_roi_pool_one`` in NumPy. Cell kinds:

    ("md", text)                   markdown
    ("code", text)                 given code (setup)
    ("answer", part, text)         the student's cell; the solution lies between
                                   ``// ### BEGIN SOLUTION`` and ``// ### END SOLUTION``
    ("check", part, text)          the check of that part (minidl.grade.kernel)

The answer cell writes ``roi_pool_cell.h`` with ``%%writefile``; the check builds it with g++
(and nvcc when present) through minidl/grade/roi_pool_harness.cpp and .cu, and compares it
with the NumPy reference. In the student copy the solution region becomes two lines,
``// TODO: ...`` and ``MINIDL_TODO("roi_pool_cell");``, which build_kernel recognises and
answers with NotImplementedError before any compiler runs.
"""

PART = "roi_pool_kernel"

KERNEL_CELLS = [
    ("md", """
## Part 4 — the same RoI pooling in C++: one body for the CPU and the GPU

In Part 3 you wrote `my_roi_pool_one` in NumPy: a loop over the bins, a slice, `.max()`. minidl's real
`roi_pool` runs the same arithmetic in C++ (OpenMP) and in CUDA, and it is written **once**. The work of
one output cell — one RoI, one channel, one bin `(ph, pw)` — is a function in a header, marked `MINIDL_HD`:

```cpp
// csrc/common/host_device.h
#if defined(__CUDACC__)                // compiled by nvcc
#define MINIDL_HD __host__ __device__ __forceinline__
#else                                  // compiled by g++
#define MINIDL_HD inline
#endif
```

Under nvcc the body becomes callable from a GPU thread *and* from the CPU; under g++ it is an ordinary inline
function. Two small *launchers* call it. The CPU launcher is a loop, parallelised over RoIs with OpenMP:

```cpp
#pragma omp parallel for schedule(dynamic, 1)
for (index_t k = 0; k < num_rois; ++k) {
  const minidl::RoiPoolGeometry<T> g =
      minidl::roi_pool_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w);
  const T* image = input + (g.valid ? g.batch : 0) * channels * plane;
  for (index_t c = 0; c < channels; ++c)
    for (index_t p = 0; p < cells; ++p) {
      const index_t cell = (k * channels + c) * cells + p;
      student::roi_pool_cell<T>(image + c * plane, height, width, g, p / pooled_w, p % pooled_w,
                                output + cell, argmax + cell);
    }
}
```

The CUDA launcher gives every output cell its own thread, which unpacks its index and calls the same body:

```cpp
const index_t index = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
if (index >= num_rois * channels * pooled_h * pooled_w) return;
const index_t pw = index % pooled_w, ph = index / pooled_w % pooled_h;
const index_t c = index / (pooled_w * pooled_h) % channels;
const index_t k = index / (pooled_w * pooled_h * channels);
const minidl::RoiPoolGeometry<T> g =
    minidl::roi_pool_geometry(rois + 5 * k, scale, batch, pooled_h, pooled_w);
const T* plane = input + ((g.valid ? g.batch : 0) * channels + c) * height * width;
student::roi_pool_cell<T>(plane, height, width, g, ph, pw, output + index, argmax + index);
```

So a test of the CPU build checks the very code a GPU runs; a GPU machine only has to confirm the launch.
(Both launchers are in `minidl/grade/roi_pool_harness.cpp` and `roi_pool_harness.cu`.)

**Your task:** write the body, `student::roi_pool_cell`. It is given the RoI's geometry `g` (computed by
`minidl::roi_pool_geometry`, printed below): the corners already scaled and rounded, `g.start_h`, `g.start_w`,
and the bin size `g.bin_h = roi_h / pooled_h`, `g.bin_w`, in the dtype `T`. Write

1. **the window** of bin `(ph, pw)`: rows `[h0, h1)` with `h0 = floor(ph * bin_h) + start_h` and
   `h1 = ceil((ph + 1) * bin_h) + start_h` (exclusive), columns likewise, each clipped to `[0, height]` /
   `[0, width]` — the rule of Part 3. Compute the products in `T` exactly as written,
   `static_cast<T>(ph) * g.bin_h`: the check compares with the reference bit for bit, and
   `ph * roi_h / pooled_h` can round differently. A RoI with `g.valid == false` pools nothing.
2. **the maximum and where it is**: start from `-FLT_MAX`, scan rows then columns, keep the first *strictly*
   greater value (ties go to the first position). Write it to `*out`, and its flat position in the plane,
   `h * width + w`, to `*argmax` — the switch the backward pass routes the gradient through. An empty bin
   (wholly outside the map) outputs `0` and argmax `-1`.

Call only `MINIDL_HD` functions from the body (a GPU thread cannot call host code): `minidl::floor_of`,
`minidl::ceil_of` and `minidl::clamp_index(v, hi)` (clamps to `[0, hi]`) from `csrc/common/roi_common.h` are
there for this. minidl's own `roi_pool_window` and `roi_pool_cell` in `csrc/roi_pool/roi_pool.h` are the
answer — the check refuses a header that uses them. Run the cell to write the file, then the check cell: it
compiles your header with g++ (and with nvcc for the GPU when one is installed), compares outputs and argmax
with the NumPy reference on random RoIs in float32 and float64, and runs a float64 gradient check.
A compiler error is shown with the line in `roi_pool_cell.h`: the file's line 1 is the line after `%%writefile`.
"""),
    ("code", """
# Given: the RoI geometry your body receives (csrc/roi_pool/roi_pool.h), printed from the source
import pathlib
import minidl

roi_pool_h = pathlib.Path(minidl.__file__).resolve().parents[1] / "csrc" / "roi_pool" / "roi_pool.h"
source = roi_pool_h.read_text()
start = source.index("template <typename T>\\nstruct RoiPoolGeometry")
print(source[start:source.index("};", start) + 2])
"""),
    ("answer", PART, """
%%writefile roi_pool_cell.h
// roi_pool_cell.h — one output cell of RoI max pooling: the body that both launchers call.
#pragma once

#include <cfloat>  // FLT_MAX

#include "common/host_device.h"  // MINIDL_HD, minidl::index_t
#include "common/roi_common.h"   // minidl::floor_of, ceil_of, clamp_index (MINIDL_HD helpers)
#include "roi_pool/roi_pool.h"   // minidl::RoiPoolGeometry: the RoI's rounded corner, bin size

namespace student {
using minidl::index_t;

// Output cell (ph, pw) of one RoI on one channel. plane: that channel of the RoI's image,
// height × width, row-major. g: start_h, start_w (rounded corner), bin_h, bin_w (bin size, in T),
// valid (false: the RoI pools nothing). Writes the maximum over the bin's window to *out and its
// flat position h * width + w to *argmax; an empty window gives 0 and -1.
template <typename T>
MINIDL_HD void roi_pool_cell(const T* plane, index_t height, index_t width,
                             const minidl::RoiPoolGeometry<T>& g, index_t ph, index_t pw,
                             T* out, index_t* argmax) {
    // ### BEGIN SOLUTION
    // The window: rows [h0, h1), columns [w0, w1). Start = floor, end = ceil (exclusive), in
    // the dtype T like minidl's kernel, shifted by the RoI's corner, then clipped to the map.
    index_t h0 = 0, h1 = 0, w0 = 0, w1 = 0;  // an invalid RoI: an empty window
    if (g.valid) {
        h0 = static_cast<index_t>(minidl::floor_of(static_cast<T>(ph) * g.bin_h)) + g.start_h;
        h1 = static_cast<index_t>(minidl::ceil_of(static_cast<T>(ph + 1) * g.bin_h)) + g.start_h;
        w0 = static_cast<index_t>(minidl::floor_of(static_cast<T>(pw) * g.bin_w)) + g.start_w;
        w1 = static_cast<index_t>(minidl::ceil_of(static_cast<T>(pw + 1) * g.bin_w)) + g.start_w;
        h0 = minidl::clamp_index(h0, height);
        h1 = minidl::clamp_index(h1, height);
        w0 = minidl::clamp_index(w0, width);
        w1 = minidl::clamp_index(w1, width);
    }
    // The maximum: from below every value, keep the first strictly greater one (ties go to the
    // first position in row-major order). An empty bin outputs 0 and argmax -1.
    const bool empty = h1 <= h0 || w1 <= w0;
    T best = empty ? T(0) : static_cast<T>(-FLT_MAX);
    index_t best_index = -1;
    for (index_t h = h0; h < h1; ++h)
        for (index_t w = w0; w < w1; ++w)
            if (plane[h * width + w] > best) {
                best = plane[h * width + w];
                best_index = h * width + w;
            }
    *out = best;
    *argmax = best_index;
    // ### END SOLUTION
}

}  // namespace student
"""),
    ("check", PART, """
from minidl.grade.kernel import build_kernel, check_roi_pool_kernel

module = build_kernel("roi_pool_cell.h")
check_roi_pool_kernel("roi_pool_cell (C++)", module)
"""),
    ("md", """
### What minidl's real kernel does differently

Your body is the lesson; `csrc/roi_pool/` holds the production version of the same idea:

* **The window is computed once per RoI**, not once per cell. `roi_pool.h` splits your function in two:
  `roi_pool_window` (the floor/ceil/clip arithmetic) and `roi_pool_cell` (the max over a given window).
  The CPU loop in `roi_pool_cpu.cpp` fills a table of the RoI's windows, then pools every channel with it —
  the RoI's part of a plane stays in the cache for all its bins. The CUDA kernel in `roi_pool_cuda.cu` still
  gives each cell its own thread (threads are cheap; a table would cost memory traffic).
* **Backward kernels.** Here the gradient went through minidl's NumPy `roi_pool_backward_reference`. The real
  backward, `roi_pool_cell_backward`, adds each output gradient at its argmax: on the CPU one thread owns
  whole channels (deterministic sums); on the GPU threads may collide, so the default adds with `atomicAdd`,
  and `deterministic=True` picks a kernel with one thread per (image, channel) plane.
* **Guards**: `roi_pool_geometry` rejects RoIs whose batch index is out of range or whose corners are NaN,
  infinite or huge (a NaN cast to an integer index is undefined behaviour), and the bindings in
  `csrc/roi_pool/roi_pool_bind_cpu.cpp` check every array's dtype, shape and contiguity before touching memory.

Read `csrc/roi_pool/roi_pool.h` next to your header: the arithmetic is the same line for line.
"""),
]
