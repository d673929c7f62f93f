"""LSTM forward + backward at a captioning size: where minidl's time goes, and minidl vs PyTorch.

Size: N = 64 sequences, T = 16 steps, D = H = 256, float32, one layer (a caption decoder).
One run times, interleaved (common.py), in one process:

    layer        nn.LSTM forward + backward (input GEMM hoisted out of the time loop)
    cells        the same recurrence as a loop of F.lstm_cell with w_ih (T small input GEMMs)
    gemm         only the GEMMs the layer does, in raw NumPy: 1 + T forward, 2 + 2T backward
    cell_fns     the T LSTMCell Functions' forward + backward called directly (no engine)
    cell_gemms   only the 3 GEMMs inside each of those cells, raw
    accumulate   the T out-of-place adds by which the engine sums the steps' dW_hh, raw
    input_*      the input GEMMs (forward, dx, dW_ih) hoisted vs once per step, raw
    torch        torch.nn.LSTM forward + backward, torch.set_num_threads(2)

and the breakdown is: GEMM = gemm; elementwise (gate math, bias add and sums, state copies)
= cell_fns − cell_gemms; Python/engine/graph overhead (Function.apply, topological sort,
gradient accumulation, split/stack of the steps, checks) = layer − gemm − elementwise. The
parent starts ``--processes`` fresh processes and reports the median over them.

    python benchmarks/bench_recurrent.py [--processes 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")  # before NumPy loads: see common.py

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_medians, try_import_torch  # noqa: E402

N, T, D, H = 64, 16, 256, 256


class _Ctx:
    """Stands in for the engine's Context when a Function is called directly."""
    needs_input_grad = (True, True, True, False, True, False, True)

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays


def candidates():
    import minidl.functional as F
    from minidl import nn
    from minidl.autograd import Tensor
    from minidl.functional.recurrent import LSTMCell

    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    g = rng.standard_normal((T, N, H)).astype(np.float32)
    lstm = nn.LSTM(D, H, rng=0)
    w_ih, w_hh, b_ih, b_hh = (p.data for p in lstm.parameters())
    xt, gt = Tensor(x, requires_grad=True), Tensor(g)

    def layer():
        lstm.zero_grad()
        xt.grad = None
        out, _ = lstm(xt)
        out.backward(gt)

    def cells():
        lstm.zero_grad()
        xt.grad = None
        h = c = Tensor(np.zeros((N, H), np.float32))
        outs = []
        for x_t in F.split_steps(xt):
            h, c = F.lstm_cell(x_t, h, c, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
            outs.append(h)
        F.stack(outs).backward(gt)

    hs = rng.standard_normal((T, N, H)).astype(np.float32)
    da = rng.standard_normal((T, N, 4 * H)).astype(np.float32)

    def gemm():
        x2, da2 = x.reshape(T * N, D), da.reshape(T * N, 4 * H)
        _ = x2 @ w_ih.T                                   # hoisted input projection
        for t in range(T):
            _ = hs[t] @ w_hh.T                            # forward, per step
            _ = da[t] @ w_hh                              # backward dh, per step
            _ = da[t].T @ hs[t]                           # backward dW_hh, per step
        _ = da2 @ w_ih                                    # backward dx, hoisted
        _ = da2.T @ x2                                    # backward dW_ih, hoisted

    projected = (x.reshape(T * N, D) @ w_ih.T + b_ih).reshape(T, N, 4 * H)
    c0 = rng.standard_normal((N, H)).astype(np.float32)

    def cell_fns():
        ctxs, h, c = [], hs[0], c0
        for t in range(T):
            ctx = _Ctx()
            h, c = LSTMCell.forward(ctx, projected[t], h, c, None, w_hh, None, b_hh)
            ctxs.append(ctx)
        for t in reversed(range(T)):
            LSTMCell.backward(ctxs[t], g[t], g[t])

    def cell_gemms():
        for t in range(T):
            _ = hs[t] @ w_hh.T
            _ = da[t] @ w_hh
            _ = da[t].T @ hs[t]

    gw = rng.standard_normal((4 * H, H)).astype(np.float32)

    def accumulate():
        total = gw.copy()
        for _ in range(T - 1):
            total = total + gw                            # the engine's out-of-place dW_hh sum

    def input_hoisted():
        x2, da2 = x.reshape(T * N, D), da.reshape(T * N, 4 * H)
        _ = x2 @ w_ih.T
        _ = da2 @ w_ih
        _ = da2.T @ x2

    def input_per_step():
        total = None
        for t in range(T):
            _ = x[t] @ w_ih.T
            _ = da[t] @ w_ih
            dw = da[t].T @ x[t]
            total = dw if total is None else total + dw

    found = {"layer": layer, "cells": cells, "gemm": gemm, "cell_fns": cell_fns, "cell_gemms": cell_gemms,
             "accumulate": accumulate, "input_hoisted": input_hoisted, "input_per_step": input_per_step}
    torch = try_import_torch()
    if torch is not None:
        torch.set_num_threads(2)
        tl = torch.nn.LSTM(D, H)
        tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def torch_lstm():
            tl.zero_grad()
            tx.grad = None
            out, _ = tl(tx)
            out.backward(tg)
        found["torch"] = torch_lstm
    return found


def child():
    medians = interleaved_medians(candidates(), rounds=11, warmup=2)
    print(json.dumps({k: v * 1e3 for k, v in medians.items()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child()
    runs = []
    for i in range(args.processes):
        out = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"process {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].items()), flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    elementwise = med["cell_fns"] - med["cell_gemms"]
    overhead = med["layer"] - med["gemm"] - elementwise
    print(f"\nLSTM N={N} T={T} D=H={H} float32, forward+backward, medians of {args.processes} processes (ms):")
    print(f"  minidl nn.LSTM           {med['layer']:7.1f}")
    print(f"    GEMMs (raw NumPy)      {med['gemm']:7.1f}  ({med['gemm'] / med['layer']:.0%})")
    print(f"    elementwise gate math  {elementwise:7.1f}  ({elementwise / med['layer']:.0%})")
    print(f"    Python/engine/copies   {overhead:7.1f}  ({overhead / med['layer']:.0%}), of which summing the "
          f"T dW_hh ≈ {med['accumulate']:.1f}")
    print(f"  loop of F.lstm_cell      {med['cells']:7.1f}  (input GEMM per step, not hoisted)")
    print(f"  input GEMMs alone: hoisted {med['input_hoisted']:.1f}, per step (+ summing dW_ih) "
          f"{med['input_per_step']:.1f}")
    if "torch" in med:
        print(f"  torch.nn.LSTM (2 thr.)   {med['torch']:7.1f}  -> minidl / torch = {med['layer'] / med['torch']:.2f}x")


if __name__ == "__main__":
    main()
