"""The fast lane of 3×3 stride-1 convolutions: Winograd's F(2×2, 3×3) or F(4×4, 3×3)
(minidl/kernels/winograd.py).

The lesson is in conv.py (conv = W @ im2col(x)). This file computes the same convolution with
2.25× (F(2×2, 3×3)) or 4× (F(4×4, 3×3), for larger convs: ``tile_for``) fewer multiplications,
behind one check in ``Conv2d`` (``takes``):

    forward   y  = output_transform( U[k] @ V[k] ),  V = input_transform(x),  U = G W Gᵀ
    backward  dM = output_adjoint(dy)                          (A dy Aᵀ per tile)
              dW = filter_transform_adjoint( Σ_chunks dM[k] @ V[k]ᵀ )
              dx = input_adjoint( U[k]ᵀ @ dM[k] )              (B dV Bᵀ, summed where patches overlap)

— every step the transpose of a forward step, so the backward is again 2 × 16 (36) GEMMs and three
cheap transforms. Two of the forward's results are needed again there, and ``Conv2d`` keeps them
from the forward when the gradient that needs them will be taken: U for dx, and V for dW when the
whole batch's V is one chunk (≤ ``MAX_V_BYTES``); otherwise the backward transforms again.

The 16 (36) products are one batched matmul (BLAS); the transforms are the C++/CUDA kernels. The batch
is cut into chunks whose transformed input V stays under ``MAX_V_BYTES`` (as conv_gemm.py bounds
the column matrix), each chunk's V and M in reused buffers (a V kept for the backward in its own).

When it pays is measured, not assumed (docs/conv.md): the GEMMs of F(2×2, 3×3) have only C (or
F) as their inner dimension, so with few channels BLAS runs them far below its peak and the
im2col GEMM wins. ``takes`` applies the measured rule (``MIN_CHANNELS``, fewer for large
convs); ``enabled = False`` switches the lane off (tests compare both).
"""
from __future__ import annotations

from .. import backend
from ..kernels import winograd
from ..kernels.im2col import batch_chunks, column_workspace, workspace
from . import conv_direct

#: False: no convolution runs here
enabled = True
#: The smallest in- and out-channel counts for which the lane runs (measured, docs/conv.md: at
#: VGG16's 128-512-channel layers fwd+bwd 0.53-0.82x im2col's time; with 16-32 channels 1.4-1.7x
#: slower) ...
MIN_CHANNELS = 128
#: ... and from this many for a conv with at least MIN_OUTPUTS_FOR_FEWER_CHANNELS outputs per
#: filter (N·out_h·out_w): with the transforms over blocks of tile rows (2026-12-07), 64-channel
#: convs from 8192 outputs took 0.76-0.96x the direct lane's fwd+bwd time (8x64x32² to 1x64x256²,
#: VGG16's conv1_2 among them), at 1024-4096 outputs 0.85-1.22x; 32 channels lost (1.2-1.5x).
MIN_CHANNELS_LARGE_OUTPUT = 64
MIN_OUTPUTS_FOR_FEWER_CHANNELS = 8192
#: The largest transformed input V (in bytes) built at once; the batch is cut into chunks below it.
MAX_V_BYTES = 16 * 2**20
#: F(4×4, 3×3) — 36 products over 4×4 output blocks, 0.56× F(2×2, 3×3)'s multiplications, float32
#: within ~1e-5 of the exact conv instead of ~5e-7 — runs a conv with at least this many outputs per
#: filter (N·out_h·out_w); below it F(2×2, 3×3). Measured (docs/conv.md, Zen 4, fwd+bwd): from
#: 4096 outputs on F(4×4) took 0.74-1.05× F(2×2)'s time (VGG16 layers at 64² and above, batch 1;
#: 32² at batch 4); at 1024 and fewer, 0.9-1.9× (its filter transform, 36·F·C values, and GEMMs
#: over only N·out_h·out_w / 16 patches no longer pay).
MIN_OUTPUTS_FOR_F4 = 4096
#: None: the rule above; 2 or 4: that tile for every conv (tests and benchmarks compare them).
TILE = None


def has_geometry(geom):
    """3×3 filters, stride 1, no dilation, one group and padding in [0, 2]: the convolutions this
    lane's transforms are written for."""
    return (geom.kernel == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1)
            and geom.groups == 1 and all(0 <= p <= 2 for p in geom.padding))


def takes(x, weight, geom):
    """Whether conv2d of x (N, C, H, W) with this weight (F, C, kh, kw) and geometry runs on the
    Winograd lane: the geometry, and MIN_CHANNELS channels — or MIN_CHANNELS_LARGE_OUTPUT where
    the conv has MIN_OUTPUTS_FOR_FEWER_CHANNELS outputs per filter and runs where that rule was
    timed (against the direct lane: float32 NumPy arrays, the fast kernels, an AVX2 CPU)."""
    if not (enabled and has_geometry(geom)):
        return False
    channels = min(weight.shape[:2])
    if channels >= MIN_CHANNELS:
        return True
    # (the 64-channel rule was timed against the direct lane, so it holds where that lane runs:
    # elsewhere — CuPy, float64, the reference mode — such a conv keeps its lane)
    if channels < MIN_CHANNELS_LARGE_OUTPUT or not conv_direct.runs_fast_form(x):
        return False
    oh, ow = winograd.output_size(*x.shape[2:], geom.padding)
    return x.shape[0] * oh * ow >= MIN_OUTPUTS_FOR_FEWER_CHANNELS


def tile_for(x, padding):
    """The output tile m of the F(m×m, 3×3) that runs conv2d of x (N, C, H, W) with ``padding``:
    ``TILE`` if set (on every device: TILE = 4 sends CuPy arrays through the F(4×4) CUDA kernels,
    which no GPU has run yet — issue 15), else 2 on CuPy arrays, else 4 from ``MIN_OUTPUTS_FOR_F4``
    outputs per filter on and 2 below."""
    if TILE is not None:
        return TILE
    if backend.is_cupy_array(x):
        return 2
    oh, ow = winograd.output_size(*x.shape[2:], padding)
    return 4 if x.shape[0] * oh * ow >= MIN_OUTPUTS_FOR_F4 else 2


def transformed_filters(x, weight, padding):
    """U = G W Gᵀ (B, F, C), B = (m + 2)², for conv2d of x (N, C, H, W) with this weight and
    padding. ``Conv2d`` computes it once and hands it to ``forward`` and, when dx will be needed,
    keeps it for ``backward``: the backward's dx needs the same U, and at VGG16's 512-channel
    layers one transform is ~2.5 ms (16 × 512 × 512 values written), a tenth of the conv's
    training step. U lives from the forward to the backward (16·F·C floats, 36·F·C for F(4×4):
    38 MB at 512 × 512). A weight changed in place between the two — which PyTorch refuses —
    gives dx of the filters the forward used."""
    return winograd.filter_transform(weight, tile_for(x, padding))


def _filters_for(x, weight, padding, u):
    """``u`` if it is U for this conv's tile (it was made by ``transformed_filters`` for the same
    x and padding), else U computed here."""
    tile = tile_for(x, padding)
    if u is not None and u.shape[0] == winograd.blocks(tile):
        return u
    return winograd.filter_transform(weight, tile)


def forward(x, weight, padding, bias=None, u=None, keep_v=False):
    """conv2d(x, weight, bias, stride 1, padding) for a 3×3 weight (F, C, 3, 3): x (N, C, H, W)
    -> (N, F, H + 2·ph − 2, W + 2·pw − 2). ``u``: the weight's ``transformed_filters``, if known.

    Returns ``(out, V)``. V = Bᵀ x B (B, C, P), the input transform, for the backward's weight
    gradient (which needs the same V) when ``keep_v`` — in a fresh array instead of the reused
    workspace — and the batch is one chunk (V ≤ ``MAX_V_BYTES``); else None (V is then not kept,
    or never whole, and the backward transforms x again, chunk by chunk)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f = weight.shape[0]
    tile = tile_for(x, padding)
    oh, ow = winograd.output_size(h, w, padding)
    th, tw = winograd.tiles(oh, ow, tile)
    u = _filters_for(x, weight, padding, u)                             # (B, F, C), B = (m + 2)²
    out = xp.empty((n, f, oh, ow), dtype=x.dtype)
    per_image = winograd.blocks(tile) * max(c, f) * th * tw * x.itemsize   # V or M of one image
    chunks = batch_chunks(n, per_image, limit=MAX_V_BYTES, xp=xp)
    # V of the whole batch at once, within the bound (one image over it is one chunk too: not kept)
    whole = len(chunks) == 1 and n * per_image <= MAX_V_BYTES
    for chunk in chunks:
        p = (chunk.stop - chunk.start) * th * tw
        v = winograd.input_transform(x[chunk], padding, _blocks("winograd_v", tile, c, p, x.dtype, xp,
                                                                fresh=keep_v and whole), tile)
        m = xp.matmul(u, v, out=_blocks("winograd_m", tile, f, p, x.dtype, xp))
        winograd.output_transform(m, bias, out[chunk], tile)
    return out, (v if keep_v and whole else None)


def _blocks(name, tile, rows, patches, dtype, xp, fresh=False):
    """A reused (B, rows, patches) buffer for V or M, B = (m + 2)²: im2col's padded-row workspace
    with B rows. On the CPU the B blocks are spaced one cache line more than their size when that
    size is a multiple of 4 KB: a tile's transform touches all B at once, and B streams at
    page-multiple distances share a handful of cache sets, as im2col's column rows do. Measured in
    docs/conv.md. ``fresh``: a new array of the same layout, for a V kept past this call (a
    workspace larger than its ``limit`` is never the reused one: limit 0 asks for a new one)."""
    count = winograd.blocks(tile)
    blocks = column_workspace(count, rows * patches, dtype, xp, name=name,
                              limit=0 if fresh else MAX_V_BYTES)
    return blocks.reshape(count, rows, patches)


def backward(x, weight, grad_out, padding, need_dx=True, need_dw=True, u=None, v=None):
    """(dx, dW) of ``forward`` (None where not needed), in the Winograd domain, chunk by chunk.
    ``u``: the forward's ``transformed_filters``, if kept; ``v``: its input transform of the
    whole batch (``forward(keep_v=True)``), if kept — then x is not transformed again."""
    xp = backend.get_array_module(x)
    n, c = x.shape[:2]
    f = weight.shape[0]
    tile = tile_for(x, padding)
    th, tw = winograd.tiles(*grad_out.shape[2:], tile)
    u = _filters_for(x, weight, padding, u) if need_dx else None
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    du = (xp.empty if n else xp.zeros)((winograd.blocks(tile), f, c), dtype=x.dtype) if need_dw else None
    per_image = winograd.blocks(tile) * max(c, f) * th * tw * x.itemsize
    chunks = batch_chunks(n, per_image, limit=MAX_V_BYTES, xp=xp)
    if v is not None and (len(chunks) != 1 or v.shape != (winograd.blocks(tile), c, n * th * tw)):
        v = None          # not this backward's V (the bound or the tile changed since): made here
    for i, chunk in enumerate(chunks):
        p = (chunk.stop - chunk.start) * th * tw
        dm = winograd.output_adjoint(grad_out[chunk], _blocks("winograd_m", tile, f, p, x.dtype, xp), tile)
        if need_dw:
            if v is None:                     # not kept by the forward: this chunk's V, made here
                chunk_v = winograd.input_transform(x[chunk], padding,
                                                   _blocks("winograd_v", tile, c, p, x.dtype, xp), tile)
            else:                             # (kept only when the batch is one chunk)
                chunk_v = v
            vt = chunk_v.transpose(0, 2, 1)                             # (B, F, P) @ (B, P, C)
            if i == 0:
                xp.matmul(dm, vt, out=du)
            else:
                du += xp.matmul(dm, vt, out=workspace("winograd_du", du.shape, x.dtype, xp))
        if need_dx:
            dv = xp.matmul(u.transpose(0, 2, 1), dm, out=_blocks("winograd_dv", tile, c, p, x.dtype, xp))
            winograd.input_adjoint(dv, padding, dx[chunk], tile)
    dw = winograd.filter_transform_adjoint(du, weight.shape, tile) if need_dw else None
    return dx, dw
