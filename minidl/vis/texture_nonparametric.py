"""Non-parametric texture synthesis: copy pixels whose surroundings match (CS231n lecture 12).

Lecture idea: before neural style transfer, texture synthesis was done *without any model*:
to make more of a texture, grow the new image and, at each step, look in the sample for
places that look like what has been generated so far around the next pixel, and copy what
comes next there. Gatys et al.'s Gram-matrix method (2015) is introduced in the lecture as the
"neural" answer to exactly this problem; this file is the classical baseline.

* ``synthesize_texture`` — Efros & Leung, "Texture Synthesis by Non-parametric Sampling"
  (ICCV 1999): one pixel at a time, starting from a small seed patch copied from the sample.
  For an unfilled pixel at the border of the filled region, take the ``window_size`` x
  ``window_size`` neighbourhood around it; compare its *known* pixels with the same positions
  of every window of the sample (sum of squared differences, weighted by a Gaussian so that
  near pixels count more); pick at random among the windows whose distance is within
  (1 + epsilon) of the best one; copy that window's centre pixel.
* ``quilt_texture`` — Efros & Freeman, "Image Quilting" (SIGGRAPH 2001): the same idea with
  whole blocks — place sample blocks in raster order, each chosen to agree with its already
  placed neighbours on an overlap strip, and join them along a minimum-error cut so the seam
  is invisible. Much faster (one search per block instead of per pixel).

Both only ever *copy* sample pixels, so every output pixel value occurs in the sample.

How the search is vectorized: all candidate windows of the sample are taken at once as a
read-only view, ``sliding_window_view(sample, (w, w))`` -> ``(n_windows, C, w, w)`` (no copy),
and the distance to every candidate is one array expression. For the small samples this is
meant for (say 32x32 with an 11x11 window: 484 candidates x 121 pixels) that is ~60 k numbers
per output pixel — a few microseconds of arithmetic. The alternative, computing the masked
SSD as three FFT correlations (Σ w·T² - 2 (w·T) ⋆ S + w ⋆ S²), costs O(HW log HW) per pixel
whatever the mask, and only pays off for samples of several hundred pixels a side.

Images are ``(C, H, W)`` (minidl's layout) or ``(H, W)``; the output has the same layout and
dtype as the sample. Randomness comes only from ``rng``: a seed gives the same texture. Both
run on the CPU with NumPy (a CuPy sample is copied to the host): the work is a long chain of
small dependent searches, which a GPU would not speed up.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import backend
from ..autograd import Tensor


def _progress(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False)


def _check_inputs(sample, size, window, window_name):
    """Return ``(sample (C, H, W), was_2d, (out_h, out_w))`` after checking the arguments."""
    sample = backend.to_numpy(sample.data if isinstance(sample, Tensor) else sample)
    if sample.ndim not in (2, 3):
        raise ValueError(f"sample must have shape (C, H, W) or (H, W), got {sample.shape}")
    was_2d = sample.ndim == 2
    sample = sample[None] if was_2d else sample
    out_h, out_w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size must be a positive int or a pair (out_h, out_w), got {size!r}")
    if not isinstance(window, (int, np.integer)) or window < 1 or window > min(sample.shape[1:]):
        raise ValueError(f"{window_name} must be an int in [1, min(H, W)] = [1, {min(sample.shape[1:])}] "
                         f"of the sample, got {window!r}")
    return sample, was_2d, (int(out_h), int(out_w))


def gaussian_window(window_size, sigma=None):
    """``(w, w)`` Gaussian weights (peak 1) — Efros & Leung use sigma = w / 6.4."""
    sigma = window_size / 6.4 if sigma is None else sigma
    offsets = np.arange(window_size) - (window_size - 1) / 2
    g = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    return np.outer(g, g)


def _pixel_coordinates(top, left, height, width):
    """``(height, width, 2)``: the (row, column) of each pixel of a block starting at (top, left)."""
    rows, columns = np.meshgrid(np.arange(top, top + height), np.arange(left, left + width), indexing="ij")
    return np.stack([rows, columns], axis=-1)


def _filled_neighbour_count(known):
    """How many of the 8 neighbours of each pixel are known (a 3x3 box sum, by slicing)."""
    padded = np.pad(known.astype(np.int32), 1)
    h, w = known.shape
    total = sum(padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    return total - known


def synthesize_texture(sample, size, window_size=11, epsilon=0.1, rng=None, progress=True,
                       seed_size=3):
    """Grow a texture of ``size`` = ``(out_h, out_w)`` (or an int) pixel by pixel (Efros & Leung).

    sample: ``(C, H, W)`` or ``(H, W)`` image to imitate; window_size: odd side of the matched
    neighbourhood (bigger = larger structures kept, slower); epsilon: candidates within
    (1 + epsilon) x the best distance are equally likely; seed_size: side of the random sample
    patch the output starts from (at its centre).

    Order of growth: repeatedly take all unfilled pixels that touch the filled region, those
    with the most filled neighbours first (ties in random order), as in the paper — so each
    pixel is chosen with as much context as possible.

    The candidates are the windows lying fully inside the sample, so the pixels within half a
    window of the sample's border are never copied (the paper also matches windows hanging
    over the border; leaving them out keeps the search one array expression). Unlike the
    paper, there is no maximum-error threshold: the best candidates are always accepted.
    """
    sample, was_2d, (out_h, out_w) = _check_inputs(sample, size, window_size, "window_size")
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd (the pixel sits at its centre), got {window_size}")
    if not 1 <= seed_size <= min(sample.shape[1:]):
        raise ValueError(f"seed_size must be in [1, min(H, W)] of the sample, got {seed_size}")
    rng = backend.get_rng(rng)
    channels = sample.shape[0]
    half = window_size // 2
    values = sample.astype(np.float64)

    # Every w x w window fully inside the sample is a candidate, flattened to one row of
    # C*w*w numbers (n, C*w*w), and the sample position of its centre pixel. (The reshape
    # copies the view once: rows must be contiguous for the fast matrix-vector product below.)
    windows = sliding_window_view(values, (window_size, window_size), axis=(1, 2))   # (C, h', w', w, w)
    candidates = windows.transpose(1, 2, 0, 3, 4).reshape(-1, channels * window_size * window_size)
    centre_yx = _pixel_coordinates(half, half, windows.shape[1], windows.shape[2]).reshape(-1, 2)
    gaussian = gaussian_window(window_size).ravel()

    # The output lives inside a canvas padded by half a window: windows never leave the canvas,
    # and the padding simply stays "unknown".
    canvas = np.zeros((channels, out_h + 2 * half, out_w + 2 * half))
    source = np.zeros((out_h, out_w, 2), dtype=np.int64)           # which sample pixel was copied
    known = np.zeros((out_h + 2 * half, out_w + 2 * half), dtype=bool)
    seed = min(seed_size, out_h, out_w)
    sy = rng.integers(0, sample.shape[1] - seed + 1)
    sx = rng.integers(0, sample.shape[2] - seed + 1)
    oy, ox = (out_h - seed) // 2, (out_w - seed) // 2             # at the centre of the output
    on_canvas = (slice(half + oy, half + oy + seed), slice(half + ox, half + ox + seed))
    canvas[(slice(None), *on_canvas)] = values[:, sy:sy + seed, sx:sx + seed]
    known[on_canvas] = True
    source[oy:oy + seed, ox:ox + seed] = _pixel_coordinates(sy, sx, seed, seed)

    bar = _progress(out_h * out_w - seed * seed, progress, "texture (Efros-Leung)")
    core = (slice(half, half + out_h), slice(half, half + out_w))
    while not known[core].all():
        counts = _filled_neighbour_count(known)[core]
        ys, xs = np.nonzero(~known[core] & (counts > 0))
        shuffle = rng.permutation(len(ys))
        order = shuffle[np.argsort(-counts[ys[shuffle], xs[shuffle]], kind="stable")]
        for y, x in zip(ys[order], xs[order]):
            # Weights: Gaussian on the known pixels of the neighbourhood, 0 on the unknown ones
            # (so whatever the canvas holds there does not matter), summing to 1.
            weights = gaussian * known[y:y + window_size, x:x + window_size].ravel()
            weights = np.tile(weights / weights.sum(), channels)   # the same for each channel
            template = canvas[:, y:y + window_size, x:x + window_size].ravel()
            diff = candidates - template                            # (n, C*w*w), one row per window
            distance = (diff * diff) @ weights                      # Gaussian-weighted SSD, (n,)
            good = np.flatnonzero(distance <= distance.min() * (1.0 + epsilon))
            pick = centre_yx[good[rng.integers(len(good))]]
            canvas[:, y + half, x + half] = values[:, pick[0], pick[1]]
            source[y, x] = pick
            known[y + half, x + half] = True
        if bar is not None:
            bar.update(len(ys))
    if bar is not None:
        bar.close()
    # copy from the original sample (not the float64 canvas) so values and dtype are exact
    out = sample[:, source[..., 0], source[..., 1]]
    return out[0] if was_2d else out


def min_error_cut(errors):
    """The top-to-bottom path of least total error through ``errors (rows, cols)`` (dynamic
    programming, each step moving at most one column). Returns one column index per row."""
    rows, cols = errors.shape
    cost = errors.astype(np.float64).copy()
    for i in range(1, rows):
        above = cost[i - 1]
        left = np.concatenate([[np.inf], above[:-1]])
        right = np.concatenate([above[1:], [np.inf]])
        cost[i] += np.minimum(np.minimum(left, above), right)
    path = np.empty(rows, dtype=np.int64)
    path[-1] = int(np.argmin(cost[-1]))
    for i in range(rows - 2, -1, -1):                               # walk back up
        j = path[i + 1]
        lo, hi = max(j - 1, 0), min(j + 2, cols)
        path[i] = lo + int(np.argmin(cost[i, lo:hi]))
    return path


def quilt_texture(sample, size, block_size=12, overlap=None, epsilon=0.1, rng=None, progress=True):
    """Tile a texture of ``size`` from sample blocks joined along minimum-error cuts (Efros & Freeman).

    block_size: side of the copied blocks; overlap: width of the strip shared with the block
    on the left / above (default a third of the block: the paper's 1/6 is meant for blocks
    of tens of pixels, and on small blocks a 2-pixel strip is too thin to pin down where in
    the pattern the new block must start); epsilon: blocks within (1 + epsilon) x the best
    overlap error are equally likely.
    """
    sample, was_2d, (out_h, out_w) = _check_inputs(sample, size, block_size, "block_size")
    overlap = max(block_size // 3, 1) if overlap is None else overlap
    if not 0 < overlap < block_size:
        raise ValueError(f"overlap must be in [1, block_size), got {overlap}")
    rng = backend.get_rng(rng)
    channels = sample.shape[0]
    values = sample.astype(np.float64)
    blocks = sliding_window_view(values, (block_size, block_size), axis=(1, 2))   # (C, h', w', b, b)
    blocks = blocks.transpose(1, 2, 0, 3, 4).reshape(-1, channels, block_size, block_size)

    step = block_size - overlap
    n_y = max(-(-(out_h - overlap) // step), 1)                     # ceil: blocks down / across
    n_x = max(-(-(out_w - overlap) // step), 1)
    canvas = np.zeros((channels, n_y * step + overlap, n_x * step + overlap))
    bar = _progress(n_y * n_x, progress, "texture (quilting)")
    for by in range(n_y):
        for bx in range(n_x):
            y, x = by * step, bx * step
            old = canvas[:, y:y + block_size, x:x + block_size]
            shared = np.zeros((block_size, block_size), dtype=bool)  # pixels already placed
            shared[:, :overlap] = bx > 0
            shared[:overlap, :] |= by > 0
            if shared.any():
                diff = blocks[:, :, shared] - old[:, shared]         # (n, C, k)
                error = (diff * diff).sum(axis=(1, 2))
                good = np.flatnonzero(error <= error.min() * (1.0 + epsilon))
            else:
                good = np.arange(len(blocks))                       # the first block: any
            new = blocks[good[rng.integers(len(good))]]
            # keep the old pixels on the far side of the cheapest seam through each overlap
            take_new = np.ones((block_size, block_size), dtype=bool)
            seam_error = ((new - old) ** 2).sum(axis=0)              # (b, b)
            if bx > 0:
                cut = min_error_cut(seam_error[:, :overlap])        # a column per row
                take_new &= np.arange(block_size)[None, :] >= cut[:, None]
            if by > 0:
                cut = min_error_cut(seam_error[:overlap, :].T)      # a row per column
                take_new &= np.arange(block_size)[:, None] >= cut[None, :]
            canvas[:, y:y + block_size, x:x + block_size] = np.where(take_new, new, old)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    out = canvas[:, :out_h, :out_w].astype(sample.dtype)
    return out[0] if was_2d else out
