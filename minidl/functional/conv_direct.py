"""The fast lane of few-channel convolutions with square kernels of 3×3, 5×5, 7×7 or 9×9, stride 1
or 2: a direct convolution, no column matrix (minidl/kernels/direct_conv.py, csrc/direct_conv/).

The lesson is in conv.py (conv = W @ im2col(x)). im2col copies every input value 9 times into a
column matrix of 9·C rows; with few channels that matrix is large next to the work done with it
(16 channels at 32×32, batch 16: a 9.4 MB matrix for a 75 MFLOP product with only 16 rows of
weights), and the GEMM reading it back runs at half of BLAS's peak. The direct kernel keeps
eight outputs (sixteen with AVX-512: one row's, or two rows of 8) of eight filters in registers
and multiplies straight from the (padded) input, which stays in the cache. The three products
of a conv's training step, behind one check in ``Conv2d`` (``takes``):

    forward   y  = direct_conv(x, W, padding, stride)
    backward  dx = direct_conv(dy, V, K − 1 − padding)    V = W rotated 180°, in/out channels swapped
                                                          (conv_dual.py's identity, for stride 1)
              dW = direct_conv_weight_grad(x, dy, padding, stride)

For stride 2 the input gradient is a transpose convolution (each dy value spreads over a K×K
patch of dx, the patches overlapping every other pixel), not a forward conv, and stays on the
plain side's col2im(Wᵀ @ dy). The kernel reads a stride-2 input from a de-interleaved padded
copy (even columns, then odd ones), so that 8 outputs' inputs are again a run of memory.

When it pays is measured (docs/conv.md): the lane runs where the kernel's AVX2 form runs
(float32 NumPy arrays on a CPU with AVX2 and FMA, ``kernels.use("native")``), for square K×K
filters with K = 3, 5, 7 or 9, stride 1 or 2 (stride 2 with output rows of 16 or more), no
dilation, one group, padding ≤ K − 1, and fewer than 128 in- or out-channels (Winograd's lane —
conv_winograd.py — is checked first and takes a 3×3 conv from 128 channels, or from 64 when it
has many outputs). The larger kernels
gain the most: im2col copies each input K² times (81 for the style-transfer net's 9×9 layers,
whose forward went 14.5 → 3.0 ms for 3 → 16 channels at 4×128², docs/conv.md). In float64 the
fast form is the textbook loop, slower than im2col's dgemm; on the GPU the CUDA kernel (one
thread per output, untuned) is not used by the lane — cuBLAS's im2col GEMM stays until a GPU run
measures the two (issue 15). ``enabled = False``
switches the lane off; ``forced = True`` runs every conv of that geometry here whatever the
dtype, kernel mode or device (the tests use it to compare the lane with the plain side everywhere).
"""
from __future__ import annotations

from .. import backend
from ..kernels import direct_conv
from .conv_dual import flipped_dual
from .conv_gemm import _conv_gemm_transposed

_FLOAT32 = backend.np.dtype("float32")    # (``x.dtype.name`` is a Python-level property: ~2 µs)

#: False: no convolution runs here
enabled = True
#: True: every conv of the kernel's geometry runs here, whatever its dtype, channels, size, kernel
#: mode or device (tests)
forced = False
#: The lane takes a conv whose smaller channel count is below this (measured, docs/conv.md)
MAX_CHANNELS = 128
#: ... and a stride-2 conv only if its output rows are at least this wide. Rows of 8 outputs are
#: one vector each and leave the kernel little to amortise: the FCN's 32 → 64 conv with 8²
#: outputs took 1.05× of im2col's time inside the training step (1.20× alone), where the 16-wide
#: rows of 16 → 32 took 0.82× (docs/conv.md).
MIN_STRIDE_2_WIDTH = 16
#: ... except a stride-2 forward where AVX-512 puts rows of ≤ 8 outputs two to a register: that
#: conv's forward takes 0.70× of im2col's time in the step (but the kernel's weight gradient 1.12×
#: of the plain side's, so the backward keeps the bound above; it does not depend on which side
#: ran the forward).
MIN_STRIDE_2_WIDTH_ROW_PAIRS = 8


def min_stride_2_width(direction):
    """The narrowest output rows of a stride-2 conv this direction ("forward" or "backward") runs
    here with: 8 for the forward where the AVX-512 row pairs run, else 16."""
    if direction not in ("forward", "backward"):
        raise ValueError(f"conv_direct: direction must be 'forward' or 'backward', got {direction!r}")
    if direction == "forward" and direct_conv.widest_lanes() >= 16:
        return MIN_STRIDE_2_WIDTH_ROW_PAIRS
    return MIN_STRIDE_2_WIDTH


def has_geometry(geom):
    """Square K×K filters with K in ``direct_conv.KERNEL_SIZES`` (3, 5, 7, 9), stride 1 or 2 (the
    same along both axes), no dilation, one group, padding in [0, K − 1]: the convolutions the
    kernel is written for."""
    k = geom.kernel[0]
    return (geom.kernel == (k, k) and k in direct_conv.KERNEL_SIZES
            and geom.stride in ((1, 1), (2, 2)) and geom.dilation == (1, 1)
            and geom.groups == 1 and all(0 <= p <= k - 1 for p in geom.padding))


def takes(x, weight, geom, direction="forward"):
    """Whether this direction ("forward" or "backward") of conv2d of x (N, C, H, W) with this
    weight (F, C, K, K) and geometry runs here."""
    if not (enabled and has_geometry(geom)):
        return False
    if forced:
        return True
    if geom.stride == (2, 2):
        out_width = direct_conv.output_size(*x.shape[2:], geom.padding, 2, geom.kernel[0])[1]
        if out_width < min_stride_2_width(direction):
            return False
    return min(weight.shape[:2]) < MAX_CHANNELS and runs_fast_form(x)


def runs_fast_form(x):
    """Whether the kernel's vectorized (AVX2 or AVX-512) form would run on x: a float32 NumPy
    array, the kernels in their native mode, a CPU with AVX2 and FMA."""
    return (not backend.is_cupy_array(x) and x.dtype == _FLOAT32
            and direct_conv.fast_cpu_form() and direct_conv.fast_form_available())


def forward(x, weight, geom, bias=None):
    """conv2d(x, weight, bias, stride, padding) of the geometry: x (N, C, H, W) -> (N, F, out_h, out_w)."""
    return direct_conv.conv(x, weight, geom.padding, bias, stride=geom.stride[0])


def backward(x, weight, grad_out, geom, need_dx=True, need_dw=True):
    """(dx, dW) of ``forward`` (None where not needed): dW is the kernel's weight gradient; dx,
    for stride 1, the forward of dy with the flipped filters (the dual convolution).

    dx stays on the plain side's col2im(Wᵀ @ dy) for stride 2 (a transpose convolution, not a
    forward one) and for a first layer: dx has C channels and the kernel computes 8 output
    channels at a time, so for 3 colour channels 5 of the 8 would be wasted (VGG16's conv1_1 at
    256²: 7–10 ms against ~4 on im2col). (A 16 → 3 layer's forward wastes 5 of 8 in the same way
    and still runs here: its K² taps make im2col's copy the larger cost — docs/conv.md.)"""
    dx = dw = None
    stride = geom.stride[0]
    if need_dx and (stride != 1 or (x.shape[1] < direct_conv.FILTER_BLOCK and not forced)):
        dx = _conv_gemm_transposed(grad_out, weight, geom, x.shape)   # (a transpose conv for stride 2)
    elif need_dx:
        flipped, dual = flipped_dual(weight, geom)          # (C, F, K, K), padding K − 1 − p
        dx = direct_conv.conv(grad_out, flipped, dual.padding)
    if need_dw:
        dw = direct_conv.weight_grad(x, grad_out, geom.padding, stride=stride,
                                     kernel_size=geom.kernel[0])
    return dx, dw
