"""Winograd F(2×2, 3×3) and F(4×4, 3×3): a 3×3, stride-1 convolution as 16 (or 36) small matrix
products.

Lecture 8 computes a convolution as one matrix product, ``W @ im2col(x)``: 9·C multiplications
per output. Winograd's minimal filtering algorithm (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", 2016) gets a 2×2 block of outputs of a 3×3 filter from a 4×4
input patch d with 16 multiplications instead of 36::

    y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A                      (g: the 3×3 filter)

Over the input channels the element-wise product ⊙ sums into 16 independent matrix products,
one per position k of the 4×4 grid — ``M[k] = U[k] @ V[k]`` with ``U = G g Gᵀ`` (F, C) and
``V = Bᵀ d B`` (C, P), P the number of patches — so the work is again GEMMs (BLAS/cuBLAS), with
2.25× fewer multiplications. The price: three transforms (cheap, additions) and a little
accuracy (the transforms add and subtract neighbouring pixels; float32 results differ from
im2col's by ~5e-7 relative to the largest output, measured in docs/conv.md).

Layouts (shared with csrc/winograd/winograd.h)::

    x  (N, C, H, W)      padding (ph, pw) in [0, 2]; out = H + 2·ph − 2 (and W likewise)
    tiles_h = ceil(out_h / 2), tiles_w = ceil(out_w / 2); patch p = (n·tiles_h + ty)·tiles_w + tx
    V  (16, C, P)        V[k, c, p] = (Bᵀ d B)[k], d the 4×4 patch at (2·ty − ph, 2·tx − pw)
    U  (16, F, C)        U[k, f, c] = (G g Gᵀ)[k], g = weight[f, c]
    M  (16, F, P)        M[k] = U[k] @ V[k]
    y  (N, F, out_h, out_w), each tile's 2×2 block = Aᵀ m A (+ bias), clipped at the edge

F(4×4, 3×3) (``tile=4`` everywhere below) is the same algorithm with 4×4 output blocks from 6×6
patches: 36 multiplications per block instead of 144, so 36 products over a quarter as many
patches — 0.56× F(2×2, 3×3)'s GEMM work. Its matrices (``B_T_43``, ``G_43``, ``A_T_43``) hold
entries up to 8, so the transforms are multiply-adds (the references and the C++ bodies form each
sum in the same order, ``_table_sum``) and float32 results are ~20× less accurate: within ~1e-5
of the exact convolution relative to the largest output (docs/conv.md). Its layouts: ``th = ceil(out_h / 4)``,
patches at (4·ty − ph, 4·tx − pw), V (36, C, P), U (36, F, C), M (36, F, P).

Implementations: the ``*_reference`` functions (NumPy or CuPy: the kernels' additions, on all
tiles at once) and
the C++/CUDA kernels of csrc/winograd/ (the per-tile bodies: one OpenMP loop iteration or one CUDA
thread per tile; the fast CPU form applies the same sums column by column and row by row over a
block of whole tile rows at once), picked from the array's type as every kernel family here. Used by
minidl/functional/conv_winograd.py, the fast lane of 3×3 stride-1 convolutions.
"""
from __future__ import annotations

from .. import backend
from . import contiguous, fast_cpu_form, launch, native_for

#: The transforms (the docstring's Bᵀ, G, Aᵀ). Bᵀ and Aᵀ are applied as the sums they stand for
#: (``_table_sum``: for these, additions and subtractions); G as a product, once per weight.
B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))
#: F(4×4, 3×3)'s (Lavin & Gray): the matrices csrc/winograd/winograd.h writes out (winograd_bt/_at).
B_T_43 = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
          (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
G_43 = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
        (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
A_T_43 = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
#: The output tiles m of F(m×m, 3×3) there are kernels for.
TILES = (2, 4)


def blocks(tile):
    """(m + 2)²: the products (and the blocks of V, U, M) of F(m×m, 3×3)."""
    return (tile + 2) ** 2


def tiles(out_h, out_w, tile=2):
    """(tiles_h, tiles_w): m×m output blocks covering the output (the last may hang over)."""
    return -(-out_h // tile), -(-out_w // tile)


def output_size(height, width, padding):
    """(out_h, out_w) of a 3×3 stride-1 convolution with ``padding`` = (ph, pw)."""
    return height + 2 * padding[0] - 2, width + 2 * padding[1] - 2


def filter_transform(weight, tile=2):
    """U (B, F, C) = G g Gᵀ for every filter g = weight[f, c] (F, C, 3, 3), B = (m + 2)².

    Written as one matrix product: entry (i, l) of G g Gᵀ is Σ_jm G[i, j] G[l, m] g[j, m], so
    with g flattened to 9 values, U = (G ⊗ G) (B × 9) @ g — for all F·C filters at once, one
    GEMM (1 ms for 512 × 512 filters, where slicing g entry by entry took 19 ms)."""
    xp = backend.get_array_module(weight)
    f, c = weight.shape[:2]
    g = xp.asarray(G if tile == 2 else G_43, dtype=weight.dtype)
    g_kron_g = xp.kron(g, g)                                            # (B, 9)
    return (g_kron_g @ weight.reshape(f * c, 9).T).reshape(blocks(tile), f, c)


def filter_transform_adjoint(du, weight_shape, tile=2):
    """dW (F, C, 3, 3) from dU (B, F, C): the transpose of ``filter_transform``'s product,
    dW = (G ⊗ G)ᵀ @ dU — Gᵀ dU G for every filter at once."""
    xp = backend.get_array_module(du)
    f, c = weight_shape[:2]
    g = xp.asarray(G if tile == 2 else G_43, dtype=du.dtype)
    return (du.reshape(blocks(tile), f * c).T @ xp.kron(g, g)).reshape(f, c, 3, 3)   # no copy


def _table_sum(coefficients, value):
    """Σ_k coefficients[k] · value(k) over the nonzero coefficients, from the first of them on —
    the sums csrc/winograd/winograd.h writes out (winograd_bt/_b/_at/_a), term for term: ±1 as a
    plain ±value (exact), each other product in the values' dtype."""
    total = None
    for k, c in enumerate(coefficients):
        if c == 0:
            continue
        v = value(k)
        term = v if c == 1 else -v if c == -1 else v.dtype.type(c) * v
        total = term if total is None else total + term
    return total


def _column(table, j):
    """Column j of a table (a row of its transpose)."""
    return tuple(row[j] for row in table)


def _tables(tile):
    """(Bᵀ, Aᵀ) of F(m×m, 3×3)."""
    return (B_T, A_T) if tile == 2 else (B_T_43, A_T_43)


def input_transform_reference(x, padding, out=None, tile=2):
    """V (B, C, P) = Bᵀ d B of every (m + 2)² patch d, B = (m + 2)² (the layout in the module
    docstring; m = ``tile``).

    The C++/CUDA body's sums in its order (``_table_sum``), on all patches at once, so the kernels
    agree with it bit for bit: first t = Bᵀ d (each column of d), then t B (each row of t)."""
    xp = backend.get_array_module(x)
    b_t, _ = _tables(tile)
    m, size = tile, tile + 2
    n, c, h, w = x.shape
    (ph, pw), (oh, ow) = padding, output_size(h, w, padding)
    th, tw = tiles(oh, ow, m)
    padded = xp.zeros((n, c, m * th + 2, m * tw + 2), dtype=x.dtype)   # zeros past the image too
    rows, cols = min(h, m * th + 2 - ph), min(w, m * tw + 2 - pw)
    padded[:, :, ph:ph + rows, pw:pw + cols] = x[:, :, :rows, :cols]
    s = padded.strides
    d = xp.lib.stride_tricks.as_strided(                              # (N, C, th, tw, m+2, m+2)
        padded, (n, c, th, tw, size, size), (s[0], s[1], m * s[2], m * s[3], s[2], s[3]))
    t = [[_table_sum(b_t[i], lambda k: d[..., k, j]) for j in range(size)] for i in range(size)]
    v = xp.empty((size, size, c, n, th, tw), dtype=x.dtype)
    for i in range(size):
        for j in range(size):
            v[i, j] = _table_sum(b_t[j], lambda k: t[i][k]).transpose(1, 0, 2, 3)  # (C, N, th, tw)
    v = v.reshape(size * size, c, n * th * tw)
    if out is None:
        return v
    out[...] = v
    return out


def output_transform_reference(M, bias, out, tile=2):
    """out (N, F, out_h, out_w) = Aᵀ m A (+ bias) of every tile, from M (B, F, P); the C++/CUDA
    body's sums, in its order: t = Aᵀ m (each column), then t A (each row)."""
    xp = backend.get_array_module(M)
    _, a_t = _tables(tile)
    size = tile + 2
    n, f, oh, ow = out.shape
    th, tw = tiles(oh, ow, tile)
    m = M.reshape(size, size, f, n, th, tw)
    t = [[_table_sum(a_t[i], lambda k: m[k, j]) for j in range(size)] for i in range(tile)]
    y = xp.empty((n, f, th, tile, tw, tile), dtype=M.dtype)
    for i in range(tile):
        for j in range(tile):
            y[:, :, :, i, :, j] = _table_sum(a_t[j], lambda k: t[i][k]).transpose(1, 0, 2, 3)
    y = y.reshape(n, f, tile * th, tile * tw)[:, :, :oh, :ow]
    out[...] = y if bias is None else y + bias.astype(M.dtype, copy=False).reshape(1, f, 1, 1)
    return out


# ---- the backward: the adjoints of the two data transforms (csrc/winograd/winograd.h) ----------
def output_adjoint_reference(dy, out, tile=2):
    """dM (B, F, P) = A dy Aᵀ of every tile's m×m output gradients dy (N, F, out_h, out_w), 0
    where a tile hangs over the edge; the C++ body's sums, in its order: t = A dy (each column of
    dy), then t Aᵀ (each row)."""
    xp = backend.get_array_module(dy)
    _, a_t = _tables(tile)
    m, size = tile, tile + 2
    n, f, oh, ow = dy.shape
    th, tw = tiles(oh, ow, m)
    padded = xp.zeros((n, f, m * th, m * tw), dtype=dy.dtype)
    padded[:, :, :oh, :ow] = dy
    d = padded.reshape(n, f, th, m, tw, m)
    t = [[_table_sum(_column(a_t, i), lambda k: d[:, :, :, k, :, b]) for b in range(m)]
         for i in range(size)]
    dm = xp.empty((size, size, f, n, th, tw), dtype=dy.dtype)
    for i in range(size):
        for j in range(size):
            dm[i, j] = _table_sum(_column(a_t, j), lambda k: t[i][k]).transpose(1, 0, 2, 3)
    out[...] = dm.reshape(size * size, f, n * th * tw)
    return out


def input_adjoint_reference(dV, padding, out, tile=2):
    """dx (N, C, H, W) = out: every pixel the sum of (B dV Bᵀ) over the tiles whose (m + 2)²
    patch holds it — the C++ body's sums (u = dV Bᵀ, then B u) and its order of tiles (above
    before below, left before right), so the kernels agree bit for bit."""
    xp = backend.get_array_module(dV)
    b_t, _ = _tables(tile)
    m, size = tile, tile + 2
    n, c, h, w = out.shape
    (ph, pw), (oh, ow) = padding, output_size(h, w, padding)
    th, tw = tiles(oh, ow, m)
    v = dV.reshape(size, size, c, n, th, tw)                           # v[k, l]: (C, N, th, tw)
    u = [[_table_sum(_column(b_t, s), lambda l: v[k, l]) for s in range(size)] for k in range(size)]
    dd = [[_table_sum(_column(b_t, r), lambda k: u[k][s]) for s in range(size)] for r in range(size)]
    image = xp.zeros((c, n, m * th + 2, m * tw + 2), dtype=dV.dtype)
    order = [*range(m, size), *range(m)]       # a pixel's upper (left) tile has r (s) in {m, m + 1}
    for r in order:
        for s in order:
            image[:, :, r:r + m * th:m, s:s + m * tw:m] += dd[r][s]
    out[...] = image[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)
    return out


def _check_arrays(op, source, written, shape, blocks=None, blocks_shape=None):
    """The O(1) checks on the way to a kernel: ``written`` of ``shape`` and ``source``'s dtype.
    On CuPy they guard memory — _C_cuda sees raw pointers and assumes C-contiguous arrays — so
    there the written array (and a ``blocks`` input, V/M/dV) must be C-contiguous too; _C checks
    strides and alignment itself (and accepts blocks spaced apart)."""
    if written.dtype != source.dtype:
        raise TypeError(f"{op}: out has dtype {written.dtype}, expected {source.dtype}")
    if blocks is not None and tuple(blocks.shape) != tuple(blocks_shape):
        name = "dV" if op == "winograd_input_adjoint" else "M"
        raise ValueError(f"{op}: {name} has shape {tuple(blocks.shape)}, expected {tuple(blocks_shape)}")
    if tuple(written.shape) != tuple(shape):
        raise ValueError(f"{op}: out has shape {tuple(written.shape)}, expected {tuple(shape)}")
    if backend.is_cupy_array(written):
        for array in (written,) + (() if blocks is None else (blocks,)):
            if not array.flags.c_contiguous:
                raise ValueError(f"{op}: the CUDA kernels take C-contiguous arrays")


def _blocks_shape(rows, height, width, padding, batch, tile=2):
    oh, ow = output_size(height, width, padding)
    th, tw = tiles(oh, ow, tile)
    return (blocks(tile), rows, batch * th * tw)


def _check_tile(op, tile):
    if tile not in TILES:
        raise ValueError(f"{op}: tile must be one of {TILES}, got {tile!r}")


def output_adjoint(dy, out, tile=2):
    """dM (B, F, P) from dy (N, F, out_h, out_w) into ``out``: C++ / CUDA, else the reference."""
    _check_tile("winograd_output_adjoint", tile)
    n, f, oh, ow = dy.shape
    th, tw = tiles(oh, ow, tile)
    _check_arrays("winograd_output_adjoint", dy, out, (blocks(tile), f, n * th * tw))
    native = native_for(dy)
    if native is None:
        return output_adjoint_reference(dy, out, tile)
    dy = contiguous(dy, backend.get_array_module(dy))
    launch(native, "winograd_output_adjoint", (dy, out), sizes=dy.shape, options=(tile,),
           fast=fast_cpu_form())
    return out


def input_adjoint(dV, padding, out, tile=2):
    """dx (N, C, H, W) into ``out`` from dV (B, C, P): C++ / CUDA, else the reference."""
    _check_tile("winograd_input_adjoint", tile)
    n, c, h, w = out.shape
    _check_arrays("winograd_input_adjoint", dV, out, out.shape, blocks=dV,
                  blocks_shape=_blocks_shape(c, h, w, padding, n, tile))
    native = native_for(dV)
    if native is None:
        return input_adjoint_reference(dV, padding, out, tile)
    launch(native, "winograd_input_adjoint", (dV, out), sizes=out.shape, options=(*padding, tile),
           fast=fast_cpu_form())
    return out


def input_transform(x, padding, out, tile=2):
    """V (B, C, P) of x (N, C, H, W) into ``out``: C++ / CUDA when built, else the reference.
    Callers (conv_winograd.py) validated the geometry: a 3×3 kernel, padding in [0, 2]."""
    _check_tile("winograd_input_transform", tile)
    n, c, h, w = x.shape
    _check_arrays("winograd_input_transform", x, out, _blocks_shape(c, h, w, padding, n, tile))
    native = native_for(x)
    if native is None:
        return input_transform_reference(x, padding, out=out, tile=tile)
    x = contiguous(x, backend.get_array_module(x))
    launch(native, "winograd_input_transform", (x, out), sizes=x.shape, options=(*padding, tile),
           fast=fast_cpu_form())
    return out


def output_transform(M, bias, out, tile=2):
    """out (N, F, out_h, out_w) from M (B, F, P), + bias (F,) or None."""
    _check_tile("winograd_output_transform", tile)
    n, f, oh, ow = out.shape
    th, tw = tiles(oh, ow, tile)
    _check_arrays("winograd_output_transform", M, out, out.shape, blocks=M,
                  blocks_shape=(blocks(tile), f, n * th * tw))
    native = native_for(M)
    if native is None:
        return output_transform_reference(M, bias, out, tile)
    xp = backend.get_array_module(M)
    # _C takes M's blocks spaced apart (conv_winograd._blocks): only an unaligned view is copied
    M = xp.require(M, requirements=("A",)) if xp is backend.np else contiguous(M, xp)
    bias = None if bias is None else contiguous(bias, xp, M.dtype)
    launch(native, "winograd_output_transform", (M, bias, out), sizes=out.shape, options=(tile,),
           fast=fast_cpu_form())
    return out
