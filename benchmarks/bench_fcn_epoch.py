"""One training epoch of the lecture-8 FCN: minidl vs the same architecture in PyTorch (CPU).

    flock /tmp/minidl-bench.lock python benchmarks/bench_fcn_epoch.py [--images 256] [--rounds 7]
    flock /tmp/minidl-bench.lock python benchmarks/bench_fcn_epoch.py --processes 5 [--without-direct] [--avx2] [--unfused] [--default-malloc]

The network is ``minidl.models.pretrained.CONFIGS["fcn_shapes"]``, mirrored layer for layer in
torch by ``torch_fcn`` (weights copied; the benchmark checks that both compute the same scores),
trained with per-pixel cross-entropy and Adam on 64×64 shapes scenes, batch 16. minidl's model
has its ten BatchNorm2d -> ReLU pairs fused (``nn.fuse_norm_relu``: the same values, one pass over
each activation fewer each way; TransformNet fuses its blocks the same way); ``--unfused`` adds
processes without, for the before/after. PyTorch runs its usual eager modules.
``--default-malloc`` adds minidl processes that keep glibc's allocator as it comes
(``MINIDL_DEFAULT_MALLOC=1``: minidl/_memory.py). Both frameworks run on 2 threads; the rounds (7: PyTorch's own epoch varies by ±20 % between rounds) are interleaved and
the median epoch time is reported (see benchmarks/common.py on noise).

``--processes N`` is the fair form, and the one docs/performance.md reports: each framework runs
alone in its own fresh processes, N of each, alternating (minidl, torch, minidl, ...), and the
median and range over the processes are printed. Alone, because the two share one OpenMP runtime in
a common process and want it set differently: minidl asks for OpenMP threads that sleep soon after a
kernel (its kernels and OpenBLAS are two thread pools; minidl/__init__.py), while PyTorch — one pool
— runs its step 1.5x slower with them (28 -> 42-51 ms measured); its processes import torch before
minidl, so OpenMP keeps PyTorch's default. ``--without-direct`` adds minidl processes with the direct
3x3 convolution lane switched off (functional/conv_direct.py), for the before/after; ``--avx2``
adds minidl processes whose direct lane keeps to AVX2 (no AVX-512 forward).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# OpenBLAS's idle worker spins ~0.1 s after each call and slows whatever runs next (see
# benchmarks/bench_conv.py); 2^20 cycles ends the spin at once. Read when NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import child_environment, only_framework, try_import_torch  # noqa: E402

# PyTorch, where it is installed, loads before minidl (here and in the torch-only children), so
# that OpenMP starts with PyTorch's default wait policy rather than the one minidl asks for.
# In the in-process mode minidl's kernels then share PyTorch's spinning OpenMP threads: the
# figures of --processes (each framework alone) are the fair ones.
TORCH = None if (only_framework() or "").startswith("minidl") else try_import_torch()
from minidl import functional as F, nn, optim          # noqa: E402
from minidl.data import ShapesDataset                   # noqa: E402
from minidl.models import pretrained                    # noqa: E402
from minidl.autograd import Tensor                        # noqa: E402


def torch_twin(torch, module):
    """The same layers in torch, weights copied: Sequential / Conv2d / ConvTranspose2d /
    BatchNorm2d / ReLU, recursively (the layers the FCN is built from)."""
    tnn, name = torch.nn, type(module).__name__
    if name in ("Sequential", "ModuleList"):
        children = [torch_twin(torch, m) for m in module]
        return tnn.Sequential(*children) if name == "Sequential" else tnn.ModuleList(children)
    if name == "ReLU":
        return tnn.ReLU()
    if name in ("Conv2d", "ConvTranspose2d"):
        cls = getattr(tnn, name)
        kwargs = dict(stride=module.stride, padding=module.padding, bias=module.bias is not None)
        if name == "ConvTranspose2d":
            kwargs["output_padding"] = module.output_padding
        twin = cls(module.in_channels, module.out_channels, module.kernel_size, **kwargs)
    elif name == "BatchNorm2d":
        twin = tnn.BatchNorm2d(module.num_features)
    else:
        raise TypeError(f"no torch twin for {name}")
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in module.state_dict().items()},
                         strict=False)
    return twin


def torch_fcn(torch, model):
    """minidl's FCN (upsampling="transpose") in torch, layer for layer, same forward."""
    assert model.upsampling == "transpose", "the benchmark mirrors the transpose-conv FCN"

    class FCN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch_twin(torch, model.encoder)
            self.up, self.refine = torch_twin(torch, model.up), torch_twin(torch, model.refine)
            self.classifier = torch_twin(torch, model.classifier)

        def forward(self, x):
            x = x - 0.5
            features = []
            for stage in self.encoder:
                x = stage(x)
                features.append(x)
            for k, (up, refine) in enumerate(zip(self.up, self.refine)):
                x = up(x)
                if model.skips:
                    x = x + features[len(features) - 2 - k]
                x = refine(x)
            scores = self.classifier(x)
            if model.first_stride > 1:
                scores = torch.nn.functional.interpolate(scores, scale_factor=model.first_stride,
                                                         mode="bilinear", align_corners=False)
            return scores
    return FCN()


def across_processes(args):
    """--processes N: each framework alone in N fresh processes, alternating; medians and ranges."""
    kinds = (["minidl", "torch"] + (["minidl-without-direct"] if args.without_direct else [])
             + (["minidl-avx2"] if args.avx2 else []) + (["minidl-unfused"] if args.unfused else [])
             + (["minidl-default-malloc"] if args.default_malloc else []))
    common = ["--images", str(args.images), "--batch-size", str(args.batch_size), "--rounds", str(args.rounds)]
    results = {kind: [] for kind in kinds}
    env = child_environment()                  # each child's framework sets its own default
    for i in range(args.processes):
        for kind in kinds:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--only", kind, *common],
                                  capture_output=True, text=True,
                                  env=dict(env, MINIDL_DEFAULT_MALLOC="1") if kind == "minidl-default-malloc"
                                  else env)
            if done.returncode != 0:
                sys.exit(f"{kind} process failed (exit code {done.returncode}):\n{done.stderr}")
            results[kind].append(json.loads(done.stdout.strip().splitlines()[-1])["median"])
            print(f"process {i + 1}/{args.processes} {kind}: {results[kind][-1]:.3f} s/epoch", flush=True)

    def spread(values):
        return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"
    print(f"\nFCN epoch, {args.images} images 64x64, batch {args.batch_size}: median [range] over "
          f"{args.processes} processes of each one's median of {args.rounds} epochs")
    for kind in kinds:
        print(f"  {kind:22s} {spread(results[kind])} s/epoch")
    torch_median = statistics.median(results["torch"])
    for kind in kinds:
        if kind != "torch":
            print(f"  {kind} / torch = {statistics.median(results[kind]) / torch_median:.2f}x "
                  f"(per process: {', '.join(f'{v / torch_median:.2f}' for v in results[kind])}; "
                  f"issue 22's target <= 1.2)")


def only(args):
    """One framework alone in this process (a child of ``across_processes``): prints its median."""
    torch = TORCH                        # imported before minidl (see above); None in minidl's children
    if args.only == "torch":
        torch.set_num_threads(2)
    from minidl.functional import conv_direct
    conv_direct.enabled = args.only != "minidl-without-direct"
    if args.only == "minidl-avx2":
        from minidl import _C
        _C.direct_conv_set_lanes(8)                  # the direct lane's forward on AVX2 only
    x, y, starts, model = _data_and_model(args)
    if args.only.startswith("minidl") and args.only != "minidl-unfused":
        nn.fuse_norm_relu(model)
    if args.only == "torch":
        tmodel = torch_fcn(torch, model)
        tmodel.train()
        epoch = torch_epoch(torch, tmodel, x, y, starts, args.batch_size)
    else:
        epoch = minidl_epoch(model, x, y, starts, args.batch_size)
    epoch()                                                   # warm-up
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    print(json.dumps({"median": statistics.median(times), "all": times}))


def minidl_epoch(model, x, y, starts, batch_size):
    """One epoch of Adam steps on minidl's FCN, as a function."""
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        for s in starts:
            loss = F.cross_entropy(model(Tensor(x[s:s + batch_size])), y[s:s + batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epoch


def torch_epoch(torch, tmodel, x, y, starts, batch_size):
    """The same epoch on the torch twin."""
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def epoch():
        for s in starts:
            loss = torch.nn.functional.cross_entropy(tmodel(tx[s:s + batch_size]), ty[s:s + batch_size])
            topt.zero_grad()
            loss.backward()
            topt.step()
    return epoch


def _data_and_model(args):
    ds = ShapesDataset(args.images, 64, "scene", seed=0, target_keys="semantic_mask")
    x = np.stack([ds[i][0] for i in range(len(ds))])
    y = np.stack([ds[i][1] for i in range(len(ds))])
    starts = range(0, args.images - args.batch_size + 1, args.batch_size)
    model = pretrained.build("fcn_shapes")
    model.train()
    return x, y, starts, model


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--processes", type=int, default=0,
                        help="run each framework alone in this many fresh processes (the fair form)")
    parser.add_argument("--without-direct", action="store_true",
                        help="with --processes: also minidl with the direct-conv lane switched off")
    parser.add_argument("--avx2", action="store_true",
                        help="with --processes: also minidl with the direct lane's forward kept on AVX2")
    parser.add_argument("--unfused", action="store_true",
                        help="with --processes: also minidl without nn.fuse_norm_relu")
    parser.add_argument("--default-malloc", action="store_true",
                        help="with --processes: also minidl with glibc's allocator left as it comes")
    parser.add_argument("--only", choices=["minidl", "torch", "minidl-without-direct", "minidl-avx2",
                                           "minidl-unfused", "minidl-default-malloc"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        return only(args)
    if args.processes:
        return across_processes(args)
    x, y, starts, model = _data_and_model(args)
    candidates = {"minidl": minidl_epoch(model, x, y, starts, args.batch_size)}
    torch = TORCH
    if torch is not None:
        torch.set_num_threads(2)
        tmodel = torch_fcn(torch, model)
        n_minidl = sum(p.data.size for p in model.parameters())
        n_torch = sum(p.numel() for p in tmodel.parameters())
        assert n_minidl == n_torch, f"parameter counts differ: minidl {n_minidl}, torch {n_torch}"
        model.eval()
        tmodel.eval()
        with torch.no_grad():                         # the same function, not just the same size
            ours, theirs = model(Tensor(x[:2])).numpy(), tmodel(torch.from_numpy(x[:2])).numpy()
        assert np.allclose(ours, theirs, atol=1e-3), f"torch twin differs by {abs(ours - theirs).max()}"
        model.train()
        tmodel.train()
        candidates["torch"] = torch_epoch(torch, tmodel, x, y, starts, args.batch_size)
    nn.fuse_norm_relu(model)                  # after the twin is built: it mirrors every ReLU
    times = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()                                              # warm-up epoch
    for _ in range(args.rounds):
        for name, fn in candidates.items():
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
