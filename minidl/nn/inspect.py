"""Looking inside a model: capture activations by layer name, run a model up to a layer.

Lecture 12 visualizes what a trained network computes: its intermediate activations. Both
tools here use forward hooks (``Module.register_forward_hook``), so they work on any model
without changing its code; layers are named by their dotted path in ``named_modules()``
(e.g. ``"features.3"``).
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def capture_activations(model, names):
    """``with capture_activations(model, ["features.3"]) as acts: model(x)`` fills ``acts``
    with name -> output Tensor (still part of the graph, so gradients can flow from it)."""
    names = [names] if isinstance(names, str) else list(names)
    acts, handles = {}, []
    try:
        for name in names:
            layer = model.get_submodule(name)
            handles.append(layer.register_forward_hook(
                lambda mod, inp, out, name=name: acts.__setitem__(name, out)))
        yield acts
    finally:
        for h in handles:
            h.remove()


class _StopForward(Exception):
    def __init__(self, output):
        self.output = output


def forward_until(model, x, name):
    """Run ``model(x)`` and return the output of layer ``name``, skipping every later layer.

    The hook raises once the layer has produced its output, so nothing after it is computed
    (useful for feature extractors: "run a VGG up to relu3_1")."""
    def stop(mod, inp, out):
        raise _StopForward(out)

    handle = model.get_submodule(name).register_forward_hook(stop)
    try:
        model(x)
    except _StopForward as done:
        return done.output
    finally:
        handle.remove()
    raise RuntimeError(f"layer {name!r} was not called during model(x)")
