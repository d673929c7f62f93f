"""im2col / col2im: turn a convolution into one matrix multiplication (lecture 8).

im2col copies every receptive field of the input into one column of a matrix; the
convolution is then ``W @ cols`` (one GEMM on BLAS/cuBLAS). col2im is the *transpose* of
im2col: it sums every column entry back into the pixel it was copied from — which is exactly
what the backward pass of a convolution (and the forward pass of a transpose convolution)
needs.

Column layout (shared with csrc/im2col/im2col.h)::

    x     (N, C, H, W)
    cols  (C*kh*kw, N*out_h*out_w)      row = (c, i, j): which weight of a filter
                                        col = (n, oy, ox): which output pixel of which image
    cols[(c,i,j), (n,oy,ox)] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]   (0 in the padding)
    out_h = (H + 2*ph - dh*(kh - 1) - 1) // sh + 1          (and the same for out_w)

The batch axis lives *inside* the columns, so a chunk of images is one GEMM
``(F, C*kh*kw) @ (C*kh*kw, n*out_h*out_w)`` rather than n small ones.

Memory: the column matrix is kh*kw times larger than the image (a 3×3 conv of 32×64×32×32
float32 images needs 75 MB), so minidl/functional/conv.py never builds it for the whole batch
when that would exceed ``MAX_COLUMN_BYTES``: ``batch_chunks`` cuts the batch into chunks whose
columns fit, and each chunk is im2col'ed into the same reused buffer (``workspace``).

Implementations: ``im2col_reference``/``col2im_reference`` (NumPy or CuPy: a loop over the
kh×kw window only, each step one strided slice — Chainer's formulation), and the C++/CUDA
kernels of csrc/im2col/ picked by ``im2col``/``col2im`` from the array's type. On the CPU the
kernel has two forms: ``im2col_cpu.cpp``, the textbook one (one call per element of the
``im2col.h`` body that the CUDA kernel calls; ``minidl.kernels.use("body")``), and
``im2col_cpu_fast.cpp`` (whole runs; the default). The kernels and the reference agree bit for
bit (col2im sums the taps of a pixel in the same order).
"""
from __future__ import annotations

import math
import threading

import numpy as np

from .. import backend
from . import contiguous, fast_cpu_form, launch, native_for
from ..pairs import as_pair

#: The largest column matrix (in bytes) built at once; the batch is cut into chunks below it.
#: Measured on the 2-core Xeon (docs/conv.md): 12 MiB runs the three large benchmark convs 1-6 %
#: faster than 8 MiB (larger GEMMs), 16 MiB between 1 % slower and 2.5 % faster, but from ~20 MiB
#: on they are 24-87 % slower (the columns no longer stay in this VM's share of the L3 cache),
#: so 12 MiB keeps a margin below that cliff. A single image whose columns exceed the bound is
#: processed alone (the bound never splits an image).
MAX_COLUMN_BYTES = 12 * 2**20
#: The bound on a GPU, where it is not a cache but the number of launches that matters: each
#: chunk costs a dozen kernel launches and as many Python calls (~10 µs each), and a GPU holds
#: gigabytes. 32x64x32x32 -> 64 fwd+bwd on an H200 ran 3.8 ms in 7 chunks of 12 MiB
#: (docs/gpu.md); the largest benchmark conv's columns (75 MB) fit one chunk under this bound.
MAX_COLUMN_BYTES_GPU = 512 * 2**20
COLUMN_ROW_PAD_BYTES = 64   # one cache line: see column_workspace
_INT64_MAX = 2**63 - 1


def conv_output_size(size, kernel, stride, padding, dilation):
    """Output length along one axis: ``(size + 2*padding - dilation*(kernel-1) - 1) // stride + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def column_shape(input_shape, kernel_size, stride, padding, dilation):
    """Shape ``(C*kh*kw, N*out_h*out_w)`` of the columns of an (N, C, H, W) input."""
    n, c, h, w = input_shape
    oh, ow = (conv_output_size(s, k, st, p, d) for s, k, st, p, d in
              zip((h, w), kernel_size, stride, padding, dilation))
    return c * kernel_size[0] * kernel_size[1], n * oh * ow


def batch_chunks(batch, bytes_per_image, limit=None, xp=np):
    """Slices cutting ``range(batch)`` into chunks of at most ``limit`` bytes of columns
    (default ``MAX_COLUMN_BYTES``, ``MAX_COLUMN_BYTES_GPU`` for CuPy's ``xp``); each chunk holds
    at least one image."""
    if limit is None:
        limit = MAX_COLUMN_BYTES if xp is np else MAX_COLUMN_BYTES_GPU
    step = max(1, int(limit // max(bytes_per_image, 1)))
    if batch <= 0:
        return []
    # As few chunks as the bound allows, of near-equal sizes: 32 images at 5 per chunk run as
    # 5,5,5,5,4,4,4, not 5,5,5,5,5,5,2 (a GEMM over few columns runs at a lower rate).
    count = -(-batch // step)
    size, larger = divmod(batch, count)           # the first `larger` chunks get one more
    starts = [i * size + min(i, larger) for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


# ---- reused buffers -----------------------------------------------------------------------------
# A fresh multi-megabyte NumPy array costs a page fault per 4 KiB on its first write (measured:
# more than half the time of an im2col into a new 72 MB buffer). The column buffers are
# scratch space that never leaves a call, so they are kept and reused; one set per thread.
_scratch = threading.local()


def workspace(name, shape, dtype, xp=np, limit=None):
    """A scratch array of ``shape`` (contents undefined), reused across calls under ``name``.

    Only for temporaries that die within a call: the next call with the same name overwrites
    it. Arrays above ``limit`` bytes (default ``MAX_COLUMN_BYTES``) are not kept. On the GPU
    CuPy's memory pool already recycles blocks, so a plain ``empty`` is returned.
    """
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    size = math.prod(shape)
    if size * np.dtype(dtype).itemsize > (MAX_COLUMN_BYTES if limit is None else limit):
        # Larger than the bound (one image whose columns exceed it, or a GEMM result with many
        # more filters than column rows): not kept, or one call would pin that memory for good
        # (a 512×512 image's 3×3×64 columns are 600 MB). A fresh array costs about the same
        # here (64×3×32×32 -> 64 fwd+bwd: 12.9 ms, 13.1 ms with every buffer kept).
        return xp.empty(shape, dtype=dtype)
    buffers = _scratch.__dict__.setdefault("buffers", {})
    key = (name, np.dtype(dtype).str)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = xp.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def column_workspace(rows, columns, dtype, xp=np, name="columns", limit=None):
    """The reused (rows, columns) buffer for a column matrix — with padded rows on the CPU.
    (``name`` and ``limit``, default ``MAX_COLUMN_BYTES``: the same for other row-stacked
    scratch, e.g. Winograd's 16 blocks of V and M, functional/conv_winograd.py.)

    A row of the column matrix is N*out_h*out_w long, so for the usual power-of-two images it
    is a multiple of 4 KB, and then every row starts at the same offset within a page: the rows
    that a GEMM reads or writes together all compete for the same few sets of the L1 and L2
    caches. One extra cache line per row (``COLUMN_ROW_PAD_BYTES``) spreads them out; the result
    is a view of the first ``columns`` entries of each row. Measured (2-core Xeon, OpenBLAS):
    alone, the GEMM writing dx's columns, (576, 64) @ (64, 4096), 1.67-1.73 -> 1.44-1.48 ms;
    inside a conv, where the columns come straight from im2col, less — fwd+bwd 0.7-2.6 % faster
    on the four benchmark convs (medians of 20 processes each, docs/conv.md); on the AMD EPYC
    VM, 32x64x32x32 -> 64 fwd+bwd 67 ms padded vs 84 ms unpadded (medians of 12 interleaved
    processes each; the other convs within noise), so the padding stays. The CUDA kernels
    take contiguous columns (no padding)."""
    itemsize = np.dtype(dtype).itemsize
    stride = columns
    if xp is np and rows > 1 and (columns * itemsize) % 4096 == 0:
        stride += COLUMN_ROW_PAD_BYTES // itemsize
    # batch_chunks sizes a chunk by its unpadded columns: the pad must not push a chunk that
    # fills the bound exactly over it (it would then be allocated afresh at every call).
    limit = (MAX_COLUMN_BYTES if limit is None else limit) + rows * (stride - columns) * itemsize
    return workspace(name, (rows, stride), dtype, xp, limit=limit)[:, :columns]


def _has_contiguous_rows(a):
    """A 2-D array whose rows are contiguous (unit stride along a row, rows far enough apart)."""
    return (a.ndim == 2 and (a.shape[1] <= 1 or a.strides[1] == a.itemsize)
            and (a.shape[0] <= 1 or (a.strides[0] % a.itemsize == 0
                                     and a.strides[0] >= a.shape[1] * a.itemsize)))


def release_workspace():
    """Free the scratch buffers of this thread (they are re-created on the next call)."""
    _scratch.__dict__.pop("buffers", None)


# ---- the NumPy reference ------------------------------------------------------------------------
def _padded_slices(i, j, out_h, out_w, stride, dilation):
    """The strided slices of the padded image that kernel tap (i, j) sees for every output pixel."""
    y0, x0 = i * dilation[0], j * dilation[1]
    return (slice(y0, y0 + stride[0] * (out_h - 1) + 1, stride[0]),
            slice(x0, x0 + stride[1] * (out_w - 1) + 1, stride[1]))


def im2col_reference(x, kernel_size, stride, padding, dilation, out=None):
    """im2col in NumPy/CuPy: pad once, then one strided slice per kernel tap (i, j).

    x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w), written into ``out`` when given.
    """
    xp = backend.get_array_module(x)
    (kh, kw), (ph, pw) = kernel_size, padding
    n, c, h, w = x.shape
    rows, columns = column_shape(x.shape, kernel_size, stride, padding, dilation)
    oh, ow = (conv_output_size(h, kh, stride[0], ph, dilation[0]),
              conv_output_size(w, kw, stride[1], pw, dilation[1]))
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((rows, columns), dtype=x.dtype) if out is None else out
    # (C, kh, kw, N, out_h, out_w) view of the column matrix: fill one (i, j) tap at a time.
    view = cols.reshape(c, kh, kw, n, oh, ow)
    for i in range(kh):
        for j in range(kw):
            window = x_pad[(slice(None), slice(None)) + _padded_slices(i, j, oh, ow, stride, dilation)]
            view[:, i, j] = window.transpose(1, 0, 2, 3)          # (N, C, ..) -> (C, N, ..)
    return cols


def col2im_reference(cols, input_shape, kernel_size, stride, padding, dilation, out=None):
    """col2im in NumPy/CuPy: add each tap's slice of the columns back into a padded image.

    cols (C*kh*kw, N*out_h*out_w) -> (N, C, H, W). A pixel seen by several taps receives the
    sum of their entries, added in (i, j) order starting from 0 (the C++ gather does the same).
    """
    xp = backend.get_array_module(cols)
    (kh, kw), (ph, pw) = kernel_size, padding
    n, c, h, w = input_shape
    oh = conv_output_size(h, kh, stride[0], ph, dilation[0])
    ow = conv_output_size(w, kw, stride[1], pw, dilation[1])
    image = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    view = cols.reshape(c, kh, kw, n, oh, ow)
    for i in range(kh):
        for j in range(kw):
            image[(slice(None), slice(None)) + _padded_slices(i, j, oh, ow, stride, dilation)] += \
                view[:, i, j].transpose(1, 0, 2, 3)
    image = image[:, :, ph:ph + h, pw:pw + w]
    if out is None:
        return xp.ascontiguousarray(image)
    out[...] = image
    return out


# ---- dispatch -----------------------------------------------------------------------------------
# One validation layer per boundary: ``check_geometry`` is the Python check with named errors,
# run by the public ``im2col``/``col2im`` and once per call by ``F.conv2d`` (whose chunked
# GEMMs then call ``im2col_into``/``col2im_into`` chunk after chunk without repeating it). The
# compiled bindings keep only the checks that guard memory (csrc/im2col/im2col_checks.h).
def check_geometry(input_shape, kernel_size, stride, padding, dilation, op="im2col"):
    """Validate a convolution's hyper-parameters against an (N, C, H, W) input: each an int or a
    pair (kernel, stride, dilation >= 1, padding >= 0), the dilated kernel inside the padded
    input, every size the kernels form below 2**63. Returns them as pairs of ints."""
    k, s, p, d = (as_pair(v, name, low) for v, name, low in
                  ((kernel_size, "kernel_size", 1), (stride, "stride", 1), (padding, "padding", 0),
                   (dilation, "dilation", 1)))
    for values, name in ((k, "kernel_size"), (s, "stride"), (p, "padding"), (d, "dilation")):
        if max(values) > _INT64_MAX:             # the kernels compute in int64
            raise ValueError(f"{op}: {name} must be < 2**63, got {values}")
    if len(input_shape) != 4:
        raise ValueError(f"{op}: x must have shape (N, C, H, W), got {tuple(input_shape)}")
    h, w = input_shape[2:]
    for axis, size, kk, pp, dd in (("height", h, k[0], p[0], d[0]), ("width", w, k[1], p[1], d[1])):
        if size + 2 * pp > _INT64_MAX:           # as the bindings: sizes they form stay in int64
            raise ValueError(f"{op}: padding: the padded input {axis} {size + 2 * pp} is 2**63 or more")
        if dd * (kk - 1) + 1 > _INT64_MAX:
            raise ValueError(f"{op}: dilation: the dilated kernel {dd * (kk - 1) + 1} is 2**63 or more")
        if size + 2 * pp < dd * (kk - 1) + 1:
            raise ValueError(f"{op}: kernel_size {k}: the (dilated) kernel {dd * (kk - 1) + 1} is "
                             f"larger than the padded input {axis} {size + 2 * pp}; use more "
                             f"padding or a smaller kernel")
    shape = column_shape(input_shape, k, s, p, d)
    if shape[0] * shape[1] > _INT64_MAX:         # the bindings' bound (im2col_checks.h)
        raise ValueError(f"{op}: the column matrix {shape} has 2**63 entries or more: "
                         f"kernel_size, padding or the input is far too large")
    return k, s, p, d


def _check_array(a, name):
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w) (layout in the module docstring).

    ``out``: an optional buffer of that shape and x's dtype to write into: C-contiguous, or
    for NumPy arrays one with padded rows (``column_workspace``'s layout).
    Runs the C++ kernel for NumPy arrays, the CUDA kernel for CuPy arrays, the reference
    otherwise (or under ``minidl.kernels.use("reference")``).
    """
    xp = backend.get_array_module(x)
    geometry = check_geometry(x.shape, kernel_size, stride, padding, dilation)
    _check_array(x, "x")
    shape = column_shape(x.shape, *geometry)
    out = _output_buffer(out, shape, x.dtype, xp, "im2col", padded_rows_ok=xp is np)
    return im2col_into(x, *geometry, out=out)


def _check_into(op, image, cols, columns, written):
    """The O(1) checks that guard memory on the way to a kernel, kept in the unchecked entry
    points: _C_cuda sees raw pointers, so a column matrix of the wrong dtype or shape, or a
    CuPy view with padded rows, would be written as if it were right."""
    if image.dtype != cols.dtype:
        raise TypeError(f"{op}: the image ({image.dtype}) and the columns ({cols.dtype}) must have "
                        "the same dtype")
    if tuple(cols.shape) != tuple(columns):
        raise ValueError(f"{op}: the columns have shape {tuple(cols.shape)}, expected {tuple(columns)}")
    if not backend.is_cupy_array(cols):
        return                                   # _C checks strides and alignment itself
    if not written.flags.c_contiguous:          # (the input is made contiguous below)
        raise ValueError(f"{op}: the CUDA kernels write C-contiguous arrays only")


def im2col_into(x, kernel_size, stride, padding, dilation, out):
    """im2col of ``x`` into ``out``, for callers that validated all of it already: pairs from
    ``check_geometry``, a float32/64 ``x``, ``out`` of the column shape (``column_workspace``)."""
    _check_into("im2col_into", x, out, column_shape(x.shape, kernel_size, stride, padding, dilation),
                written=out)
    native = native_for(x)
    if native is None:
        return im2col_reference(x, kernel_size, stride, padding, dilation, out=out)
    x = contiguous(x, backend.get_array_module(x))
    launch(native, "im2col", (x, out), sizes=x.shape,
           options=(*kernel_size, *stride, *padding, *dilation), fast=fast_cpu_form())
    return out


def _output_buffer(out, shape, dtype, xp, op, padded_rows_ok=False):
    """``out`` checked to be a C-contiguous ``dtype`` array of ``shape`` (or, with
    ``padded_rows_ok``, one with contiguous rows: ``column_workspace``), or a new one when None."""
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"{op}: out must be a {dtype} array of shape {shape}, got {out.dtype} "
                         f"{out.shape}")
    if not (out.flags.c_contiguous or (padded_rows_ok and _has_contiguous_rows(out))):
        layout = "C-contiguous or with contiguous rows" if padded_rows_ok else "C-contiguous"
        raise ValueError(f"{op}: out must be {layout}, got strides {out.strides}")
    return out


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """cols (C*kh*kw, N*out_h*out_w) -> image (N, C, H, W) = ``input_shape``: each pixel gets
    the sum of the column entries im2col copied from it (the transpose of im2col)."""
    xp = backend.get_array_module(cols)
    input_shape = tuple(int(v) for v in input_shape)
    geometry = check_geometry(input_shape, kernel_size, stride, padding, dilation, op="col2im")
    _check_array(cols, "cols")
    shape = column_shape(input_shape, *geometry)
    if cols.shape != shape:
        raise ValueError(f"col2im: cols has shape {cols.shape}, expected {shape} for an input "
                         f"of shape {input_shape}")
    out = _output_buffer(out, input_shape, cols.dtype, xp, "col2im")
    return col2im_into(cols, *geometry, out=out)


def col2im_into(cols, kernel_size, stride, padding, dilation, out):
    """col2im of ``cols`` into the image ``out`` (N, C, H, W), for callers that validated all of
    it already (as ``im2col_into``); ``cols`` may have padded rows (``column_workspace``)."""
    _check_into("col2im_into", out, cols, column_shape(out.shape, kernel_size, stride, padding, dilation),
                written=out)
    native = native_for(cols)
    if native is None:
        return col2im_reference(cols, out.shape, kernel_size, stride, padding, dilation, out=out)
    xp = backend.get_array_module(cols)
    if xp is not np or not (_has_contiguous_rows(cols) and cols.flags.aligned):  # padded rows: fine
        cols = contiguous(cols, xp)
    launch(native, "col2im", (cols, out), sizes=out.shape,
           options=(*kernel_size, *stride, *padding, *dilation), fast=fast_cpu_form())
    return out
