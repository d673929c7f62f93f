"""Looking at feature space: PCA, t-SNE and nearest neighbours (CS231n lecture 12).

Lecture idea: the last hidden layer of a CNN maps every image to a vector. Two images whose
vectors are close are "similar to the network" — even when their pixels are far apart. Three
tools let us look at that space:

* ``nearest_neighbors`` — for a query image, the k images of a bank with the closest feature
  vectors (L2). Done on raw pixels it finds images with the same colours and layout; done on
  CNN features it finds images of the same *kind* of thing.
* ``pca`` — the best linear projection to 2-D (or k-D): project onto the top right-singular
  vectors of the centred data.
* ``tsne`` — t-distributed Stochastic Neighbour Embedding (van der Maaten & Hinton, 2008):
  place points in 2-D so that *who is whose neighbour* is preserved, not the distances
  themselves. Written from scratch in its exact O(N^2) form (fine for N <= ~2000):

  1. for every point i, a Gaussian over the others, p(j|i) ∝ exp(-beta_i * ||x_i - x_j||^2),
     whose bandwidth beta_i is found by binary search so that its perplexity 2^H (here e^H
     with H in nats) equals the user's ``perplexity`` ("the effective number of neighbours");
  2. symmetrize: p_ij = (p(j|i) + p(i|j)) / 2N, a joint distribution over pairs;
  3. in the embedding, a heavy-tailed Student-t (one degree of freedom) similarity
     q_ij ∝ (1 + ||y_i - y_j||^2)^-1 — its heavy tail lets moderately far points be placed
     far apart, which fixes the "crowding problem" of a Gaussian;
  4. minimize KL(P || Q) by gradient descent with momentum and per-coordinate gains
     (the "delta-bar-delta" trick of van der Maaten's reference code), with P multiplied by
     ``early_exaggeration`` for the first 250 iterations so that clusters form early.

Every array function here uses ``xp = backend.get_array_module(...)``, so passing CuPy arrays
runs the whole computation on the GPU. Computations are done in float64: the probabilities
span many orders of magnitude and t-SNE is known to be sensitive to round-off.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import backend
from ..autograd import Tensor

#: iterations run with exaggerated P and momentum 0.5 (van der Maaten's and scikit-learn's value)
EARLY_EXAGGERATION_ITERS = 250


def _as_matrix(features, name):
    """Unwrap a Tensor, flatten everything after the first axis, return float64 ``(N, D)``."""
    if isinstance(features, Tensor):
        features = features.data
    xp = backend.get_array_module(features)
    features = xp.asarray(features)
    if features.ndim < 2:
        raise ValueError(f"{name} must have shape (N, D) or (N, *), got shape {tuple(features.shape)}")
    if features.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one row, got shape {tuple(features.shape)}")
    return features.reshape(features.shape[0], -1).astype(np.float64, copy=False), xp


def _progress(iterable, enabled, desc):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, leave=False)


# ---- PCA -------------------------------------------------------------------------------------

class PCAResult(NamedTuple):
    """What ``pca`` returns (a tuple: ``projected, components, ratio = pca(x, 2)`` works)."""
    projected: object                 #: (N, k) coordinates of each point on the components
    components: object                #: (k, D) orthonormal rows, largest variance first
    explained_variance_ratio: object  #: (k,) fraction of the total variance along each component


def pca(features, n_components):
    """Principal component analysis by the SVD of the centred data.

    features: ``(N, D)`` (or ``(N, *)``, flattened, e.g. images ``(N, C, H, W)``).
    Writing the centred data as ``Xc = U S Vᵀ``, the principal directions are the rows of
    ``Vᵀ`` and ``Xc Vᵀ[:k]ᵀ = U[:, :k] S[:k]`` are the projected points; component i explains
    ``S_i² / Σ S²`` of the variance. ``projected @ components + features.mean(0)`` is the best
    rank-k approximation of the data (Eckart–Young).

    Each component's sign is fixed so that its largest-magnitude entry is positive (an SVD is
    only defined up to sign; this makes results the same on every LAPACK / cuSOLVER).
    """
    x, xp = _as_matrix(features, "features")
    n, d = x.shape
    if not isinstance(n_components, (int, np.integer)) or not 1 <= n_components <= min(n, d):
        raise ValueError(f"n_components must be an int in [1, min(N, D)] = [1, {min(n, d)}], "
                         f"got {n_components!r}")
    centred = x - x.mean(axis=0, keepdims=True)
    _, singular_values, vt = xp.linalg.svd(centred, full_matrices=False)
    components = vt[:n_components]
    # sign convention: the entry of largest magnitude of each component is positive
    largest = xp.argmax(xp.abs(components), axis=1)
    signs = xp.sign(components[xp.arange(n_components), largest])
    components = components * xp.where(signs == 0, 1.0, signs)[:, None]
    variance = singular_values ** 2
    total = variance.sum()
    ratio = variance[:n_components] / total if float(total) > 0 else xp.zeros(n_components)
    return PCAResult(centred @ components.T, components, ratio)


# ---- distances and neighbours ----------------------------------------------------------------

def pairwise_squared_distances(a, b=None):
    """``D[i, j] = ||a_i - b_j||²`` for ``a (N, D)``, ``b (M, D)`` (b = a when omitted).

    Uses ``||a||² - 2 a·b + ||b||²`` (one matrix product instead of an (N, M, D) temporary);
    round-off can make that slightly negative, so it is clipped at 0.
    """
    xp = backend.get_array_module(a, b)
    b = a if b is None else b
    sq = (a * a).sum(axis=1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(axis=1)[None, :]
    return xp.maximum(sq, 0.0)


def nearest_neighbors(query_feats, bank_feats, k):
    """The ``k`` rows of ``bank_feats`` closest (L2) to each row of ``query_feats``.

    query_feats: ``(Q, D)`` or ``(Q, *)``; bank_feats: ``(M, D)`` or ``(M, *)`` with the same D.
    Returns ``(distances, indices)``, both ``(Q, k)``, sorted nearest first (like
    ``sklearn``'s ``kneighbors``). A query that is also in the bank finds itself at distance 0.
    Pass pixels ``(N, C, H, W)`` for "nearest neighbours in pixel space" or CNN features for
    "in feature space" — the lecture-12 comparison.
    """
    q, xp = _as_matrix(query_feats, "query_feats")
    bank, _ = _as_matrix(bank_feats, "bank_feats")
    if q.shape[1] != bank.shape[1]:
        raise ValueError(f"query_feats and bank_feats must have the same feature size D, got "
                         f"{q.shape[1]} and {bank.shape[1]}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k must be an int in [1, M] = [1, {bank.shape[0]}], got {k!r}")
    sq = pairwise_squared_distances(q, bank)                      # (Q, M)
    # argpartition finds the k smallest in O(M); only those k are then sorted
    part = xp.argpartition(sq, k - 1, axis=1)[:, :k] if k < bank.shape[0] else \
        xp.broadcast_to(xp.arange(bank.shape[0]), sq.shape)
    part_sq = xp.take_along_axis(sq, part, axis=1)
    order = xp.argsort(part_sq, axis=1, kind="stable")
    indices = xp.take_along_axis(part, order, axis=1)
    return xp.sqrt(xp.take_along_axis(part_sq, order, axis=1)), indices


# ---- t-SNE: the input-space affinities P -----------------------------------------------------

def conditional_probabilities(sq_distances, perplexity, tol=1e-5, max_steps=100):
    """Rows ``p(j|i) ∝ exp(-beta_i D_ij)`` whose perplexity ``exp(H_i)`` equals ``perplexity``.

    sq_distances: ``(N, N)`` squared distances (the diagonal is ignored: p(i|i) = 0).
    Returns ``(P, beta)``: ``P (N, N)`` with rows summing to 1, and the precisions
    ``beta (N,)`` (beta = 1 / 2σ²). H_i = -Σ_j p(j|i) log p(j|i) is in nats.

    Each row has its own binary search on beta — but all N searches run *at once*, as array
    operations (one row per lane), so it is N times fewer Python steps and runs on a GPU too.
    The search is van der Maaten's: entropy too high (too many neighbours) -> increase beta,
    doubling it while no upper bound is known, bisecting once bracketed; stop when every row
    is within ``tol`` nats of log(perplexity).
    """
    xp = backend.get_array_module(sq_distances)
    d = xp.asarray(sq_distances, dtype=np.float64)
    n = d.shape[0]
    if d.ndim != 2 or d.shape[1] != n:
        raise ValueError(f"sq_distances must be a square (N, N) matrix, got shape {tuple(d.shape)}")
    if not 1.0 <= perplexity < n:
        raise ValueError(f"perplexity must be in [1, N) = [1, {n}) (the effective number of "
                         f"neighbours), got {perplexity}")
    diagonal = xp.eye(n, dtype=bool)
    # Shift each row by its smallest off-diagonal distance: p(j|i) is unchanged (the factor
    # exp(beta * min) cancels in the normalization) but the nearest neighbour now has weight
    # exp(0) = 1, so the row sum can never underflow to 0, whatever the scale of the data.
    row_min = xp.where(diagonal, xp.inf, d).min(axis=1, keepdims=True)
    d = xp.where(diagonal, 0.0, d - row_min)
    target = math.log(perplexity)

    beta = xp.ones(n)
    beta_lo = xp.zeros(n)            # largest beta known to give too high an entropy
    beta_hi = xp.full(n, xp.inf)     # smallest beta known to give too low an entropy
    for _ in range(max_steps):
        _, entropy = _gaussian_rows(d, beta, diagonal)
        error = entropy - target
        unfinished = xp.abs(error) > tol
        if not bool(unfinished.any()):
            break
        too_flat = error > 0          # too many effective neighbours: make the Gaussian narrower
        beta_lo = xp.where(unfinished & too_flat, beta, beta_lo)
        beta_hi = xp.where(unfinished & ~too_flat, beta, beta_hi)
        grow = xp.where(xp.isinf(beta_hi), beta * 2.0, (beta + beta_hi) / 2.0)
        shrink = (beta + beta_lo) / 2.0
        beta = xp.where(unfinished, xp.where(too_flat, grow, shrink), beta)
    p, _ = _gaussian_rows(d, beta, diagonal)
    return p, beta


def _gaussian_rows(d, beta, diagonal):
    """Rows ``exp(-beta_i d_ij) / Z_i`` (zero diagonal) and their entropies ``H_i`` in nats."""
    xp = backend.get_array_module(d)
    weights = xp.where(diagonal, 0.0, xp.exp(-d * beta[:, None]))
    row_sum = weights.sum(axis=1)
    # H = -Σ p log p = log Z + beta E_p[d]   for p = exp(-beta d) / Z
    entropy = xp.log(row_sum) + beta * (d * weights).sum(axis=1) / row_sum
    return weights / row_sum[:, None], entropy


def joint_probabilities(features, perplexity):
    """The symmetric t-SNE input affinities ``P (N, N)``, summing to 1 (p_ii = 0).

    ``p_ij = (p(j|i) + p(i|j)) / 2N``: symmetrizing guarantees every point, even an outlier
    whose own p(.|i) ignores everyone, has Σ_j p_ij >= 1/2N, so it still feels a pull.
    """
    x, _ = _as_matrix(features, "features")
    conditional, _ = conditional_probabilities(pairwise_squared_distances(x), perplexity)
    joint = conditional + conditional.T
    return joint / joint.sum()


# ---- t-SNE: the embedding-space similarities Q, the loss and its gradient -----------------------

def kl_divergence_and_gradient(p, y, compute_kl=True, block_rows=256):
    """``KL(P || Q)`` and its gradient with respect to the embedding ``y (N, d)``.

    q_ij = w_ij / Z with w_ij = 1 / (1 + ||y_i - y_j||²) (Student-t, one degree of freedom)
    and Z = Σ_{k≠l} w_kl. The gradient (van der Maaten & Hinton 2008, eq. 5)

        dKL/dy_i = 4 Σ_j (p_ij - q_ij) w_ij (y_i - y_j)
                 = 4 [ Σ_j p_ij w_ij (y_i - y_j)  -  (1/Z) Σ_j w_ij² (y_i - y_j) ]
                        attraction (only neighbours)    repulsion (everyone)

    is a spring between every pair. Written as attraction minus repulsion / Z, each term is a
    sum over j that can be computed ``block_rows`` rows of the (N, N) matrices at a time, Z
    being added up along the way: the temporaries stay cache-sized (2x faster on the CPU for
    N = 2000 than building whole N x N matrices). On a GPU the whole matrix is one block.

    The loss uses the same pieces: since Σ p = 1,
    KL = Σ p log p - Σ p log q = Σ p log p + Σ p_ij log(1 + ||y_i - y_j||²) + log Z.
    compute_kl=False skips it (the optimizer only needs the gradient) and returns None.
    """
    xp = backend.get_array_module(p, y)
    n = y.shape[0]
    block_rows = n if xp is not np else block_rows
    sq_norms = (y * y).sum(axis=1)
    attraction = xp.empty_like(y)
    repulsion = xp.empty_like(y)
    z = 0.0
    p_log_one_plus_d2 = 0.0
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        y_block = y[start:stop]                                    # (B, d)
        # 1 + ||y_i - y_j||² for the rows of the block: (B, N), in place to spare temporaries
        w = y_block @ y.T
        w *= -2.0
        w += sq_norms[start:stop, None]
        w += sq_norms[None, :]
        xp.maximum(w, 0.0, out=w)                                  # round-off can go below 0
        w += 1.0
        if compute_kl:
            p_log_one_plus_d2 += float((p[start:stop] * xp.log(w)).sum())
        xp.reciprocal(w, out=w)                                    # w_ij
        rows = xp.arange(stop - start)
        w[rows, rows + start] = 0.0                                # no self-similarity
        z += float(w.sum())
        pw = p[start:stop] * w
        # Σ_j a_ij (y_i - y_j) = (Σ_j a_ij) y_i - (a @ y)_i
        attraction[start:stop] = pw.sum(axis=1, keepdims=True) * y_block - pw @ y
        w *= w
        repulsion[start:stop] = w.sum(axis=1, keepdims=True) * y_block - w @ y
    grad = 4.0 * (attraction - repulsion / z)
    if not compute_kl:
        return None, grad
    p_log_p = float((p * xp.log(xp.where(p > 0, p, 1.0))).sum())  # 0 log 0 = 0
    return p_log_p + p_log_one_plus_d2 + math.log(z), grad


class TSNEResult(NamedTuple):
    """What ``tsne`` returns (a tuple: ``embedding, kl = tsne(x)`` works)."""
    embedding: object      #: (N, n_components) the 2-D (or k-D) positions
    kl_divergence: float   #: KL(P || Q) of the returned embedding (without exaggeration)


def tsne(features, n_components=2, perplexity=30.0, n_iter=1000, learning_rate="auto",
         early_exaggeration=12.0, init="pca", rng=None, progress=True, min_gain=0.01):
    """Embed ``features`` ``(N, D)`` (or ``(N, *)``) in ``n_components`` dimensions by exact t-SNE.

    perplexity: the effective number of neighbours each point cares about (5-50; < N).
    n_iter: gradient steps in total; the first ``EARLY_EXAGGERATION_ITERS`` (250) use P times
        ``early_exaggeration`` and momentum 0.5, the rest the true P and momentum 0.8.
    learning_rate: a float, or ``"auto"`` = max(N / early_exaggeration / 4, 50) (Belkina et al.
        2019, scikit-learn's default).
    init: ``"pca"`` (the first PCA coordinates scaled to std 1e-4 — deterministic and keeps the
        global layout), ``"random"`` (N(0, 1e-4²) from ``rng``), or an ``(N, n_components)``
        array.
    rng: a ``numpy.random.Generator``, an int seed or None (minidl's default generator).
    progress: show a tqdm bar with the current KL divergence.

    Returns ``TSNEResult(embedding, kl_divergence)``: the ``(N, n_components)`` embedding on
    the device of ``features`` and the final KL(P || Q) as a float (a named tuple, so both
    ``result.kl_divergence`` and ``embedding, kl = tsne(...)`` work).

    The update is van der Maaten's: per-coordinate gains grow by 0.2 while the previous step
    still goes downhill and shrink by x0.8 once it overshoots (never below ``min_gain``), then
    ``update = momentum * update - learning_rate * gains * grad``; the embedding is re-centred
    every step (the loss does not depend on a translation). The gains and the momentum buffer
    carry over from the early-exaggeration phase to the rest, as in his reference code.
    """
    x, xp = _as_matrix(features, "features")
    n = x.shape[0]
    if not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise ValueError(f"n_components must be a positive int, got {n_components!r}")
    if not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive int, got {n_iter!r}")
    if early_exaggeration < 1:
        raise ValueError(f"early_exaggeration must be >= 1, got {early_exaggeration}")
    if isinstance(learning_rate, str):
        if learning_rate != "auto":
            raise ValueError(f"learning_rate must be a positive float or 'auto', got {learning_rate!r}")
        learning_rate = max(n / early_exaggeration / 4.0, 50.0)
    elif not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive float or 'auto', got {learning_rate!r}")

    y = _initial_embedding(x, xp, n_components, init, rng)
    p = joint_probabilities(x, perplexity)
    p_exaggerated = p * early_exaggeration

    update = xp.zeros_like(y)
    gains = xp.ones_like(y)
    steps = _progress(range(n_iter), progress, "t-SNE")
    for it in steps:
        early = it < EARLY_EXAGGERATION_ITERS
        _, grad = kl_divergence_and_gradient(p_exaggerated if early else p, y, compute_kl=False)
        # Gains: speed a coordinate up while the last step still points downhill in it (step
        # and gradient of opposite signs), slow it down once it has overshot (same signs).
        still_downhill = (update * grad) < 0
        gains = xp.maximum(xp.where(still_downhill, gains + 0.2, gains * 0.8), min_gain)
        momentum = 0.5 if early else 0.8
        update = momentum * update - learning_rate * gains * grad
        y = y + update
        y = y - y.mean(axis=0, keepdims=True)
        if progress and (it + 1) % 50 == 0:
            steps.set_postfix(kl=f"{kl_divergence_and_gradient(p, y)[0]:.4f}")
    kl, _ = kl_divergence_and_gradient(p, y)
    return TSNEResult(y, kl)


def _initial_embedding(x, xp, n_components, init, rng):
    n = x.shape[0]
    if isinstance(init, str):
        if init == "pca":
            if n_components > min(x.shape):
                raise ValueError(f"init='pca' needs n_components <= min(N, D) = {min(x.shape)}")
            projected = pca(x, n_components).projected
            std = float(projected[:, 0].std())
            return projected / (std if std > 0 else 1.0) * 1e-4
        if init == "random":
            noise = backend.get_rng(rng).standard_normal((n, n_components))
            return xp.asarray(1e-4 * noise)
        raise ValueError(f"init must be 'pca', 'random' or an (N, n_components) array, got {init!r}")
    if isinstance(init, Tensor):
        init = init.data
    init = backend.to_numpy(init) if xp is np else init    # the init may live on another device
    y = xp.array(init, dtype=np.float64)                    # a copy: the caller's array is not moved
    if y.shape != (n, n_components):
        raise ValueError(f"init array must have shape (N, n_components) = {(n, n_components)}, "
                         f"got {tuple(y.shape)}")
    return y
