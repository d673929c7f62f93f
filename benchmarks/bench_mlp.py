"""One training step of a 3-layer MLP (784-512-256-10, batch 256): minidl vs PyTorch CPU.

A step is forward + cross-entropy + backward + SGD(momentum) update. Target: minidl ≤ 1.3×
PyTorch's time. PyTorch is optional (the comparison is skipped without it).

    python benchmarks/bench_mlp.py
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")  # before NumPy loads: see common.py

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_medians, try_import_torch  # noqa: E402

import minidl.functional as F  # noqa: E402
from minidl import nn, optim, tensor  # noqa: E402

BATCH, SIZES = 256, (784, 512, 256, 10)


def minidl_step_fn(x, y):
    model = nn.Sequential(nn.Linear(784, 512, rng=0), nn.ReLU(), nn.Linear(512, 256, rng=1), nn.ReLU(),
                          nn.Linear(256, 10, rng=2))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = tensor(x), y

    def step():
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_step_fn(torch, x, y):
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 784)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    candidates = {"minidl": minidl_step_fn(x, y)}
    torch = try_import_torch()
    if torch is not None:
        candidates["pytorch"] = torch_step_fn(torch, x, y)
    times = interleaved_medians(candidates, rounds=25, repeats=5)
    flops = 6 * BATCH * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))  # fwd 2mnk + bwd 4mnk
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}: one SGD training step (median)")
    for name, t in times.items():
        print(f"  {name:8s} {t * 1e3:7.2f} ms   {flops / t / 1e9:6.1f} GFLOP/s")
    if "pytorch" in times:
        print(f"  ratio minidl / pytorch = {times['minidl'] / times['pytorch']:.2f}  (target <= 1.3)")
    else:
        print("  (PyTorch not installed: no comparison)")


if __name__ == "__main__":
    main()
