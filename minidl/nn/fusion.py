"""fuse_norm_relu: run each normalization layer and the ReLU after it as one operation.

A network built as Conv -> BatchNorm2d -> ReLU (the lecture-8 FCN, the fast-style transformer)
spends its time between the convolutions in passes over whole activations, each reading an
array from memory and writing a new one. Normalization and ReLU are two such passes in each
direction, yet ReLU only clamps what normalization has just computed, and its backward only
zeroes the gradient that normalization's backward is about to read. Fused, the normalization's
kernels do both (kernels/norm.py: max(y, 0) in the forward pass, the gradient gated by that
output in the backward's passes): the same outputs bit for bit, the gradients up to the order
of the per-channel sums, one pass fewer each way (docs/performance.md for the measured effect on
an FCN training step).

Fusion changes how the model runs, not what it computes or stores: ``state_dict`` keys and
values are unchanged (the ReLU had no parameters), so a checkpoint loads into the fused or the
unfused model alike. What it removes is the ReLU *module* and the ReLU *Function*: a forward
hook on the module (as ``nn.capture_activations`` uses) no longer fires, and
``minidl.override_backward(ReLU, rule)`` (guided backprop) no longer reaches that ReLU — fuse a
model for training, not for looking inside it. PyTorch offers the same idea for inference
(``torch.ao.quantization.fuse_modules``); here it serves training.
"""
from __future__ import annotations

from .layers import Identity, ReLU, Sequential
from .norm import BatchNorm2d, InstanceNorm2d


def fuse_norm_relu(model):
    """In every ``Sequential`` of ``model``, each BatchNorm2d / InstanceNorm2d (not a subclass)
    directly followed by a ReLU takes that ReLU into its own passes (``fused_relu = True``), and
    the ReLU's place holds an ``Identity`` (so the children keep their names and indices). In
    place; returns the number of pairs fused (0 when there are none, or on a second call)."""
    fused = 0
    for module in list(model.modules()):
        if not isinstance(module, Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            norm, after = module._modules[first], module._modules[second]
            # exact types: a subclass may override forward and never look at fused_relu
            if type(norm) in (BatchNorm2d, InstanceNorm2d) and type(after) is ReLU \
                    and not norm.fused_relu:
                norm.fused_relu = True
                module.add_module(second, Identity())
                fused += 1
    return fused
