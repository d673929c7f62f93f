"""One training epoch of the lecture-8 FCN: minidl vs the same architecture in PyTorch (CPU).

    flock /tmp/minidl-bench.lock python benchmarks/bench_fcn_epoch.py [--images 256] [--rounds 3]

The network is ``minidl.models.pretrained.CONFIGS["fcn_shapes"]`` (stride-2 stem, 3×3 conv + batch
norm + ReLU stages of widths 16-32-64-64, transpose-conv decoder with additive skips, a final 4×4
transpose conv to 6 class scores at 64×64), trained with per-pixel cross-entropy and Adam on
64×64 shapes scenes, batch 16. Both frameworks run on 2 threads; the rounds are interleaved and
the median epoch time is reported (see benchmarks/common.py on noise).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import try_import_torch                    # noqa: E402
from minidl import functional as F, optim              # noqa: E402
from minidl.data import ShapesDataset                   # noqa: E402
from minidl.models import pretrained                    # noqa: E402
from minidl.tensor import Tensor                        # noqa: E402


def torch_fcn(torch, widths=(16, 32, 64, 64), num_classes=6):
    nn = torch.nn

    def conv_bn_relu(i, o, stride=1):
        return nn.Sequential(nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

    class FCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, previous = nn.ModuleList(), 3
            for i, w in enumerate(widths):
                self.encoder.append(nn.Sequential(conv_bn_relu(previous, w, 2), conv_bn_relu(w, w)))
                previous = w
            self.up, self.refine = nn.ModuleList(), nn.ModuleList()
            for i in range(len(widths) - 1, 0, -1):
                self.up.append(nn.Sequential(nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1), nn.ReLU()))
                self.refine.append(conv_bn_relu(widths[i - 1], widths[i - 1]))
            self.classifier = nn.ConvTranspose2d(widths[0], num_classes, 4, 2, 1)

        def forward(self, x):
            x = x - 0.5
            features = []
            for stage in self.encoder:
                x = stage(x)
                features.append(x)
            for k, (up, refine) in enumerate(zip(self.up, self.refine)):
                x = refine(up(x) + features[len(widths) - 2 - k])
            return self.classifier(x)
    return FCN()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ds = ShapesDataset(args.images, 64, "scene", seed=0, target_keys="semantic_mask")
    x = np.stack([ds[i][0] for i in range(len(ds))])
    y = np.stack([ds[i][1] for i in range(len(ds))])
    starts = range(0, args.images - args.batch_size + 1, args.batch_size)

    model = pretrained.build("fcn_shapes")
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def minidl_epoch():
        for s in starts:
            loss = F.cross_entropy(model(Tensor(x[s:s + args.batch_size])), y[s:s + args.batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()

    candidates = {"minidl": minidl_epoch}
    torch = try_import_torch()
    if torch is not None:
        torch.set_num_threads(2)
        tmodel = torch_fcn(torch)
        n_minidl = sum(p.data.size for p in model.parameters())
        n_torch = sum(p.numel() for p in tmodel.parameters())
        assert n_minidl == n_torch, f"parameter counts differ: minidl {n_minidl}, torch {n_torch}"
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_epoch():
            for s in starts:
                loss = torch.nn.functional.cross_entropy(tmodel(tx[s:s + args.batch_size]), ty[s:s + args.batch_size])
                topt.zero_grad()
                loss.backward()
                topt.step()
        candidates["torch"] = torch_epoch
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()                                              # warm-up epoch
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            time.sleep(0.2)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"FCN epoch: {args.images} images 64x64, batch {args.batch_size}, "
          f"{sum(p.data.size for p in model.parameters())} parameters, median of {args.rounds} rounds")
    for name, t in medians.items():
        print(f"  {name:7s} {t:7.2f} s/epoch  {1000 * t / args.images:6.2f} ms/image  (all: "
              + ", ".join(f"{v:.2f}" for v in times[name]) + ")")
    if "torch" in medians:
        print(f"  minidl / torch = {medians['minidl'] / medians['torch']:.2f}x (target <= 2x)")
    else:
        print("  torch not installed: no comparison")


if __name__ == "__main__":
    main()
