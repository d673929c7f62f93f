"""The fast lane of Adam: one update over many parameters at once ("multi-tensor", what PyTorch
calls ``foreach``).

The lesson is ``Adam._update_one`` in optimizer.py: the update of one parameter, eleven array
operations. A network has dozens of parameters, most of them small (a batch-norm layer's γ and β
are 16–512 values), so a training step spends much of its Adam time in the per-call cost of
those operations: the FCN of lecture 8 has 32 parameters, ~350 NumPy calls per step. Here the
moments m and v of the parameters updated together live in two flat arrays — each parameter's
``state["m"]``/``state["v"]`` is a view of its slice, so the one-parameter update and this one
share them — and a step is the same operations once on the concatenated gradients, then one
subtraction per parameter: the FCN's Adam 0.62 → 0.47 ms per step (docs/performance.md; the rest
is the arithmetic itself). The values are those of the one-parameter update bit for bit (element
by element the same float operations, with the same Python-float scalars); tests/test_optim.py
compares the two over several steps.

Which parameters go together: those of one group that have a gradient this step and have taken
the same number of steps (the bias correction depends on it), all of one dtype and array module.
Usually that is the whole group; a parameter that missed a step (no gradient: a frozen branch, a
loss term that was absent) forms a bucket of its own from then on, and each bucket keeps its flat
arrays. Parameters that cannot share (another dtype, a moment whose shape no longer matches the
parameter, the same parameter twice) run the one-parameter update.

Memory: besides m and v, a step holds the concatenated gradients and the update (each the size of
the bucket); the arithmetic runs over slices of ``SLICE`` values, so its temporaries stay small.
"""
from __future__ import annotations

from .. import backend

#: Values per slice of the flat arithmetic: temporaries of 1 MB in float32, which stay in cache
SLICE = 1 << 18


def adam_step(group, params, state, caches):
    """One Adam step for ``params`` (a group's parameters that have a gradient) in buckets of flat
    moments; ``state``: the optimizer's per-parameter state (id -> dict); ``caches``: this group's
    flat arrays by bucket (a dict, kept by the caller). Returns the parameters left for the
    one-parameter update (module docstring), none of which it has changed."""
    buckets, rest = {}, []
    if len({id(p) for p in params}) != len(params):
        rest = list(params)                       # a parameter listed twice: updated twice, in turn
    else:
        for p in params:
            s = state.setdefault(id(p), {})
            if "m" in s and s["m"].shape != p.data.shape:
                rest.append(p)                    # (the one-parameter update says what is wrong)
                continue
            key = (s.get("step", 0), p.data.dtype, backend.get_array_module(p.data))
            buckets.setdefault(key, []).append(p)
    used = {}
    for (_, _, xp), bucket in buckets.items():
        if len(bucket) == 1:                      # nothing to share: the plain update
            rest.extend(bucket)
            continue
        ids = tuple(id(p) for p in bucket)
        used[ids] = caches.get(ids, {})
        _step_bucket(group, bucket, [state[id(p)] for p in bucket], used[ids], xp)
    caches.clear()                                # the buckets of this step only
    caches.update(used)
    for p in rest:        # moments outside any bucket get arrays of their own, so that a flat
        s = state.setdefault(id(p), {})           # array no bucket uses any more can be freed
        if "m" in s and s["m"].base is not None:
            s["m"], s["v"] = s["m"].copy(), s["v"].copy()
    return rest


def _step_bucket(group, params, states, flat, xp):
    """The Adam step of parameters that share one step count, dtype and array module."""
    if not _moments_are_flat(flat, params, states):
        _make_flat_moments(flat, params, states, xp)
    lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    if wd and group["decoupled"]:
        for p in params:
            p.data *= 1 - lr * wd
    grads = [p.grad.data + wd * p.data if wd and not group["decoupled"] else p.grad.data
             for p in params]
    g = xp.concatenate([a.reshape(-1) for a in grads])
    for s in states:
        s["step"] += 1
    t = states[0]["step"]
    step_size = lr / (1 - b1 ** t)
    m_all, v_all = flat["m"], flat["v"]
    update = xp.empty_like(m_all)
    for start in range(0, m_all.size, SLICE):     # the same operations as Adam._update_one,
        part = slice(start, start + SLICE)        # on every parameter's values at once
        m, v, gp = m_all[part], v_all[part], g[part]
        m *= b1
        m += (1 - b1) * gp
        v *= b2
        v += (1 - b2) * (gp * gp)
        denom = xp.sqrt(v / (1 - b2 ** t))
        denom += eps
        update[part] = step_size * (m / denom)
    for p, (start, stop) in zip(params, flat["slices"]):
        p.data -= update[start:stop].reshape(p.data.shape)


def _moments_are_flat(flat, params, states):
    """Whether the cache holds this exact list of parameters and each one's m and v are still
    the views of the flat arrays made for it (a new optimizer state, or parameters that changed
    shape, make them anew)."""
    if flat.get("ids") != tuple(id(p) for p in params):
        return False
    return all(s.get("m") is m and s.get("v") is v and p.data.shape == m.shape
               for p, s, m, v in zip(params, states, flat["m_views"], flat["v_views"]))


def _make_flat_moments(flat, params, states, xp):
    """Flat m and v for the bucket, holding each parameter's moments so far (zeros for a first
    step), and each parameter's state pointed at its slice of them."""
    sizes = [p.data.size for p in params]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    dtype = params[0].data.dtype
    m, v = xp.zeros(starts[-1], dtype=dtype), xp.zeros(starts[-1], dtype=dtype)
    flat.clear()
    flat.update(ids=tuple(id(p) for p in params), m=m, v=v,
                slices=list(zip(starts, starts[1:])), m_views=[], v_views=[])
    for p, s, start, stop in zip(params, states, starts, starts[1:]):
        m_view = m[start:stop].reshape(p.data.shape)
        v_view = v[start:stop].reshape(p.data.shape)
        if "m" in s:                                  # moments of earlier steps carried over
            m_view[...] = s["m"]
            v_view[...] = s["v"]
        s["m"], s["v"] = m_view, v_view
        s.setdefault("step", 0)
        flat["m_views"].append(m_view)
        flat["v_views"].append(v_view)
