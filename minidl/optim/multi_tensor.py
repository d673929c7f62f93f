"""The fast lane of Adam: one update over all of a parameter group at once ("multi-tensor", what
PyTorch calls ``foreach``).

The lesson is ``Adam._update_one`` in optimizer.py: the update of one parameter, eleven array
operations. A network has dozens of parameters, most of them small (a batch-norm layer's γ and β
are 16–512 values), so a training step spends much of its Adam time in the per-call cost of
those operations: the FCN of lecture 8 has 32 parameters, ~350 NumPy calls per step. Here a
group's moments m and v live in two flat arrays — each parameter's ``state["m"]``/``state["v"]``
is a view of its slice, so the one-parameter update and this one share them — and a step is the
same operations once on the concatenated gradients, then one subtraction per parameter: the
FCN's Adam 0.62 → 0.47 ms per step (docs/performance.md; the rest is the arithmetic itself).
The values are those of the one-parameter update bit for bit (element by element the same float
operations, with the same Python-float scalars); tests/test_optim.py compares the two over
several steps.

Taken (``adam_step``'s result True) when every parameter of the group has a gradient, one dtype
and one array module, and all have taken the same number of steps; otherwise the caller runs the
one-parameter update, on the same views.
"""
from __future__ import annotations

from .. import backend


def adam_step(group, params, state, flat):
    """One Adam step for ``params`` (a group's parameters, every one with a gradient) on the
    group's flat moments; ``state``: the optimizer's per-parameter state (id -> dict), ``flat``:
    this group's cache (a dict, filled here). Returns False, having changed nothing, when the
    parameters cannot share one update (module docstring)."""
    first = params[0].data
    xp = backend.get_array_module(first)
    if any(p.data.dtype != first.dtype or backend.get_array_module(p.data) is not xp for p in params):
        return False
    states = [state.setdefault(id(p), {}) for p in params]
    steps = {s.get("step", 0) for s in states}
    if len(steps) != 1:
        return False
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
    m, v = flat["m"], flat["v"]
    m *= b1                                   # the same operations as Adam._update_one,
    m += (1 - b1) * g                         # on every parameter's values at once
    v *= b2
    v += (1 - b2) * (g * g)
    step_size = lr / (1 - b1 ** t)
    denom = xp.sqrt(v / (1 - b2 ** t))
    denom += eps
    update = step_size * (m / denom)
    for p, (start, stop) in zip(params, flat["slices"]):
        p.data -= update[start:stop].reshape(p.data.shape)
    return True


def _moments_are_flat(flat, params, states):
    """Whether the cache holds this exact list of parameters and each one's m and v are still
    the views of the flat arrays made for it (a new optimizer state, or parameters that changed
    shape, make them anew)."""
    if flat.get("ids") != tuple(id(p) for p in params):
        return False
    return all(s.get("m") is m and s.get("v") is v
               for s, m, v in zip(states, flat["m_views"], flat["v_views"])) and all(
        p.data.shape == m.shape for p, m in zip(params, flat["m_views"]))


def _make_flat_moments(flat, params, states, xp):
    """Flat m and v for the group, holding each parameter's moments so far (zeros for a first
    step), and each parameter's state pointed at its slice of them."""
    sizes = [p.data.size for p in params]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    dtype = params[0].data.dtype
    m, v = xp.zeros(starts[-1], dtype=dtype), xp.zeros(starts[-1], dtype=dtype)
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
