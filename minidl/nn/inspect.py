"""Looking inside a model: capture activations by layer name, run a model up to a layer.

Lecture 12 visualizes what a trained network computes: its intermediate activations. These
tools use forward hooks (``Module.register_forward_hook``), so they work on any model
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


class _AllCaptured(Exception):
    """Raised by the capture hook once every requested layer has produced its output."""


def layer_outputs(model, x, layers):
    """``{name: output Tensor}`` of several layers in one forward pass, stopping as soon as the
    last of them has run (a VGG is not run past ``relu4_1`` when that is the deepest needed)."""
    layers = list(dict.fromkeys([layers] if isinstance(layers, str) else layers))
    outputs, handles = {}, []

    def store(name):
        def hook(module, inputs, output):
            outputs[name] = output
            if len(outputs) == len(layers):
                raise _AllCaptured
        return hook

    try:
        for name in layers:
            handles.append(model.get_submodule(name).register_forward_hook(store(name)))
        try:
            model(x)
        except _AllCaptured:
            pass
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in layers if n not in outputs]
    if missing:
        raise RuntimeError(f"layers {missing} were not called during model(x)")
    return outputs


def forward_until(model, x, name):
    """Run ``model(x)`` and return the output of layer ``name``, skipping every later layer
    (useful for feature extractors: "run a VGG up to relu3_1")."""
    return layer_outputs(model, x, [name])[name]
