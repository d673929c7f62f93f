"""GPU timings and correctness: minidl (CuPy + minidl._C_cuda) vs PyTorch / torchvision CUDA.

What it measures, one row per case (the targets are issue 15's, as ratios minidl / torch):

    conv2d / conv_transpose2d fwd+bwd   the five shapes of benchmarks/bench_conv.py (SHAPES),
                                         bias included, grads of input, weight, bias   <= 2.0
    nms                                 N = 1,000 / 5,000 / 20,000 random boxes, IoU 0.5   <= 1.0
    roi_pool, roi_align fwd+bwd         input (2, 256, 50, 50), 512 RoIs, 7x7, scale 1/16
                                         (roi_align: sampling_ratio -1, aligned=False)      <= 1.0
    batch_norm, instance_norm fwd+bwd   training mode, affine, (32, 64, 64, 64) and
                                         (16, 128, 32, 32) float32                          <= 1.5
    FCN epoch                           the lecture-8 FCN (``pretrained.build("fcn_shapes")``)
                                         vs its torch twin (bench_fcn_epoch.torch_fcn): 256
                                         shapes scenes 64x64, batch 16, Adam, per-pixel
                                         cross-entropy, data already on the device          <= 2.0

fwd+bwd = forward, then ``out.backward(g)`` with a fixed random upstream gradient ``g``; the
gradients are cleared (``.grad = None``) before every call on both sides.

Run (from the repository root; ``bash benchmarks/gpu.sh`` builds minidl first):

    python benchmarks/bench_gpu.py --json gpu_results.json            # the GPU run (~1-2 min)
    python benchmarks/bench_gpu.py --device cpu --smoke                # checks the script logic
    python benchmarks/bench_gpu.py --only nms roi --rounds 11         # some cases only

Method. Before timing, every case checks minidl against torch once on the same data: the
outputs and, for fwd+bwd, the gradients (input, weight, bias), with
``np.allclose(ours, torch, rtol=1e-3, atol=1e-4 * max(1, max|torch|))`` per array (the FCN's
scores in eval mode: atol 1e-3 * scale, as bench_fcn_epoch.py); nms compares the kept indices
exactly. The ``match`` column shows yes/no and the worst max|ours - torch| / max(1, max|torch|)
over the compared arrays (per array in the JSON). Then: warm-up calls (CuPy compiles its
kernels, cuDNN picks algorithms), and ``--rounds`` interleaved rounds (minidl, torch, minidl,
torch, ...). In every round each side runs once untimed (its own steady state, not the other's
wake), the device is synchronized, and then one timed block: a CUDA event recorded on the
library's current stream (``cupy.cuda.Event`` for minidl, ``torch.cuda.Event`` for torch), the
call ``repeats`` times, an end event, synchronize, elapsed / repeats. ``repeats`` is chosen per
case so that a block lasts ~10 ms of minidl time (1 for the FCN epoch, which is also timed
without the untimed call, after one warm-up epoch, over at most 5 rounds). The figure is the
median over the rounds. The events bracket what the GPU sees from the first launch to the last
kernel, so host-side overhead (Python, launches, synchronizing ``bool(array)`` calls) counts,
as it does for a user. With ``--device cpu`` the same runs on NumPy / CPU torch, timed with
``time.perf_counter``.

Fairness: cuDNN's float32 convolutions use TF32 tensor cores by default in torch (10 mantissa
bits); CuPy's GEMMs are IEEE float32. So the script sets ``torch.backends.cudnn.allow_tf32 =
False`` (and ``cuda.matmul.allow_tf32 = False``) unless ``--torch-tf32`` is given; then the
check's tolerance for the conv/FCN cases is loosened to rtol 1e-2, atol 1e-2 * scale. (The
legacy setter on purpose: in torch >= 2.9 it sets the new per-op precisions of cuDNN conv and
RNN together, whereas setting only ``cudnn.conv.fp32_precision`` is a "mix of the legacy and
new APIs" that torch refuses wherever it reads the flag without an op name.) The conv cases'
match column would show TF32 (differences ~1e-3). ``torch.backends.cudnn.benchmark`` stays at
torch's default (False); the header says what was in effect.

Every case runs inside try/except: a failure prints its traceback on stderr and an
``ERROR: ...`` row, and the script goes on; a torch-side failure keeps minidl's timing (torch
'-'). A case still running after ``--case-timeout`` seconds (a hung kernel) dumps the stacks
and ends the script (exit status 1). Exit status 1 when any case errored (either side), any
check did not match, or a case was skipped for the time budget (``--budget``: cases not
started by then); 2 when ``--only`` matches no case; otherwise 0 (a missed target is not a
failure of the script). ``--json PATH`` writes a header (GPU, driver, CUDA runtime, CuPy, torch,
torchvision, cuDNN, date, settings) and one record per case, rewritten after every case, so a
crash keeps what was measured.
"""
from __future__ import annotations

import argparse
import datetime
import faulthandler
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")  # before NumPy loads: see common.py

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import minidl  # noqa: E402
import minidl.functional as F  # noqa: E402
from minidl import backend, kernels, ops  # noqa: E402

BLOCK_MS = 10.0        # target length of one timed block (minidl's time), sets ``repeats``
MAX_REPEATS = 50
FCN_MAX_ROUNDS = 5


class Unavailable(Exception):
    """The torch side cannot run here (not installed, no CUDA): '-', not an error."""


def short(error):
    """A one-line message for a table cell."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = f"{type(error).__name__}: {text}"[:140]
    return text.replace("|", "/")


# ---- the environment: device, libraries, timers ---------------------------------------------
class Env:
    def __init__(self, args):
        self.device = args.device
        self.smoke = args.smoke
        self.tf32 = args.torch_tf32
        self.cp = None
        if self.device == "cuda":
            if not backend.cuda_available():
                raise SystemExit("--device cuda: no usable CUDA GPU (CuPy + driver); "
                                 "use --device cpu --smoke to check the script")
            import cupy
            self.cp = cupy
        self.torch = self.tv = None
        self.torch_note = ""
        self.torch_precision = "-"
        try:
            import torch
            self.torch = torch
        except Exception as error:  # ImportError, or a broken install raising something else
            self.torch_note = f"torch not importable ({short(error)})"
        if self.torch is not None:
            try:
                import torchvision
                self.tv = torchvision
            except Exception as error:
                self.torch_note = f"torchvision not importable ({short(error)})"
            if self.device == "cuda" and not self.torch.cuda.is_available():
                self.torch_note = "torch.cuda.is_available() is False"
                self.torch = self.tv = None
        if self.torch is not None and self.device == "cuda":
            self.torch_precision = self._set_torch_precision()
        self.tdev = self.device

    def _set_torch_precision(self):
        """IEEE float32 convolutions in torch (no TF32) unless --torch-tf32, through the legacy
        setters (why: the module docstring); returns what is in effect, as text."""
        torch = self.torch
        warnings.filterwarnings("ignore", message=".*TF32.*")    # the legacy flags' deprecation
        if not self.tf32:
            try:
                torch.backends.cudnn.allow_tf32 = False
                torch.backends.cuda.matmul.allow_tf32 = False
            except Exception:
                traceback.print_exc()
        state = []
        for label, get in (("cudnn.allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
                           ("cudnn.conv.fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision),
                           ("cuda.matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32)):
            try:
                state.append(f"{label}={get()}")
            except Exception as error:            # absent in this torch, or refused
                state.append(f"{label}=? ({type(error).__name__})")
        return ", ".join(state)

    # arrays and tensors
    def m_tensor(self, a, requires_grad=False):
        return minidl.tensor(a, requires_grad=requires_grad, device=self.device)

    def m_array(self, a):
        return backend.to_device(np.array(a), self.device)

    def need_torch(self, vision=False):
        """torch, or Unavailable (the reason is in the header)."""
        if self.torch is None:
            raise Unavailable("no torch")
        if vision and self.tv is None:
            raise Unavailable("no torchvision")
        return self.torch

    def t_tensor(self, a, requires_grad=False):
        return self.torch.tensor(np.asarray(a), device=self.tdev, requires_grad=requires_grad)

    # synchronizing and timing
    def sync(self):
        if self.device == "cuda":
            self.cp.cuda.Device().synchronize()
            if self.torch is not None:
                self.torch.cuda.synchronize()

    def timer(self, side):
        """A function (fn, repeats) -> milliseconds per call, for 'minidl' or 'torch'."""
        if self.device == "cpu":
            def cpu_time(fn, repeats):
                start = time.perf_counter()
                for _ in range(repeats):
                    fn()
                return (time.perf_counter() - start) * 1e3 / repeats
            return cpu_time
        if side == "minidl":
            cp = self.cp
            start, end = cp.cuda.Event(), cp.cuda.Event()

            def cupy_time(fn, repeats):
                self.sync()
                start.record()
                for _ in range(repeats):
                    fn()
                end.record()
                end.synchronize()
                return cp.cuda.get_elapsed_time(start, end) / repeats
            return cupy_time
        torch = self.torch
        tstart, tend = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def torch_time(fn, repeats):
            self.sync()
            tstart.record()
            for _ in range(repeats):
                fn()
            tend.record()
            tend.synchronize()
            return tstart.elapsed_time(tend) / repeats
        return torch_time


def header_info(env, args):
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": env.device, "smoke": env.smoke, "python": platform.python_version(),
            "numpy": np.__version__, "minidl_kernels": kernels.available(),
            "rounds": args.rounds, "warmup": args.warmup}
    try:
        info["minidl_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
            timeout=5).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if info["minidl_commit"] and dirty:   # a copied working tree: HEAD is not what runs
            info["minidl_commit"] += " + uncommitted changes"
    except Exception:
        info["minidl_commit"] = None
    if env.device == "cuda":
        cp = env.cp
        for key, get in (("gpu", lambda: cp.cuda.runtime.getDeviceProperties(0)["name"]),
                         ("driver_version", cp.cuda.runtime.driverGetVersion),
                         ("runtime_version", cp.cuda.runtime.runtimeGetVersion)):
            try:
                value = get()
                info[key] = value.decode() if isinstance(value, bytes) else value
            except Exception as error:
                info[key] = f"? ({short(error)})"
        info["cupy"] = cp.__version__
        info["CUPY_TF32"] = os.environ.get("CUPY_TF32", "unset")
    else:
        info["cpu"] = platform.processor() or platform.machine()
        info["cpu_count"] = os.cpu_count()
    info["torch"] = env.torch.__version__ if env.torch is not None else None
    info["torchvision"] = env.tv.__version__ if env.tv is not None else None
    if env.torch is not None:
        try:
            info["cudnn"] = env.torch.backends.cudnn.version()
            info["cudnn_benchmark"] = bool(env.torch.backends.cudnn.benchmark)
        except Exception as error:
            info["cudnn"] = f"? ({short(error)})"
        info["torch_fp32_precision"] = env.torch_precision
    if env.torch_note:
        info["torch_note"] = env.torch_note
    return info


def version_text(v):
    """CUDA's 13000 -> '13.0'."""
    return f"{v // 1000}.{(v % 1000) // 10}" if isinstance(v, int) else str(v)


# ---- correctness -----------------------------------------------------------------------------
def to_np(a):
    if isinstance(a, minidl.Tensor):
        return a.numpy()
    if hasattr(a, "detach"):                      # a torch tensor
        return a.detach().cpu().numpy()
    return backend.to_numpy(a)


def compare(ours, theirs, rtol, atol):
    """(ok, worst scaled diff, note, per-array details) over two {name: array} dicts."""
    ok, worst, notes, details = True, 0.0, [], {}
    for key, b in theirs.items():
        a, b = np.asarray(ours[key], np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            ok = False
            notes.append(f"{key} shape {a.shape} vs {b.shape}")
            continue
        if not np.isfinite(a).all():
            ok = False
            notes.append(f"{key} not finite")
            continue
        scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
        diff = float(np.abs(a - b).max()) if a.size else 0.0
        worst = max(worst, diff / scale)
        details[key] = {"max_abs_diff": diff, "scale": scale}
        if not np.allclose(a, b, rtol=rtol, atol=atol * scale):
            ok = False
            notes.append(f"{key} {diff / scale:.1e}")
    return ok, worst, "; ".join(notes), details


def compare_indices(ours, theirs):
    a, b = np.asarray(ours).astype(np.int64), np.asarray(theirs).astype(np.int64)
    if a.shape == b.shape and np.array_equal(a, b):
        return True, None, f"{len(a)} kept, same indices", {"kept": len(a)}
    differ = len(set(a.tolist()) ^ set(b.tolist()))
    order = " (same set, other order)" if differ == 0 else ""
    return (False, None, f"kept {len(a)} vs torch {len(b)}, {differ} indices differ{order}",
            {"kept": len(a), "torch_kept": len(b), "differ": differ})


# ---- the cases -------------------------------------------------------------------------------
class Case:
    """name, target ratio, and two builders env -> (fn, check): ``fn()`` is what is timed,
    ``check()`` runs it once and returns {name: array} (or kept indices for nms)."""

    def __init__(self, name, target, minidl_side, torch_side, kind="allclose", repeats=None,
                 rounds=None, warmup=None, switch=True, loose=False, atol=1e-4):
        self.name, self.target = name, target
        self.minidl_side, self.torch_side = minidl_side, torch_side
        self.kind, self.repeats, self.rounds, self.switch = kind, repeats, rounds, switch
        self.warmup = warmup                      # None: --warmup
        self.loose = loose                        # convolutions: --torch-tf32 widens the tolerance
        self.atol = atol                          # times max(1, max|torch|)


def fwd_bwd(forward, leaves, grad):
    """(step, check) of a forward+backward, for either library: ``step`` clears the leaves'
    gradients, runs ``forward()`` and backpropagates ``grad``; ``check`` returns the output
    and each leaf's gradient (``dx``, ``dw``, ...) as NumPy arrays."""
    def step():
        for t in leaves.values():
            t.grad = None
        out = forward()
        out.backward(grad)
        return out

    def check():
        out = step()
        return {"out": to_np(out), **{f"d{k}": to_np(t.grad) for k, t in leaves.items()}}
    return step, check


def conv_case(shape, rng, smoke):
    """One bench_conv.SHAPES tuple (name, N, C, H, W, F, k, stride, pad, output_padding or None
    for a plain conv); weights (F, C, k, k) for conv2d, (C, F, k, k) for conv_transpose2d."""
    _, n, c, h, w, f, k, s, p, op = shape
    if smoke:
        n, c, h, w, f = min(n, 2), max(1, c // 16), min(h, 8), min(w, 8), max(1, f // 8)
    transposed = op is not None
    if transposed:
        oh, ow = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
        opname, wshape, extra = "conv_transpose2d", (c, f, k, k), f" op{op}"
    else:
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        opname, wshape, extra = "conv2d", (f, c, k, k), ""
    name = f"{opname} fwd+bwd {n}x{c}x{h}x{w}->{f} k{k} s{s} p{p}{extra}"
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = (rng.standard_normal(wshape, dtype=np.float32) * 0.1).astype(np.float32)
    bias = rng.standard_normal(f, dtype=np.float32)
    grad = rng.standard_normal((n, f, oh, ow), dtype=np.float32)

    def side(functional, tensor, array):
        xt, wt, bt = tensor(x, True), tensor(weight, True), tensor(bias, True)

        def forward():
            if transposed:
                return functional.conv_transpose2d(xt, wt, bt, stride=s, padding=p, output_padding=op)
            return functional.conv2d(xt, wt, bt, stride=s, padding=p)
        return fwd_bwd(forward, {"x": xt, "w": wt, "b": bt}, array(grad))

    def minidl_side(env):
        return side(F, env.m_tensor, env.m_array)

    def torch_side(env):
        return side(env.need_torch().nn.functional, env.t_tensor, env.t_tensor)
    return Case(name, 2.0, minidl_side, torch_side, loose=True)


def random_boxes(rng, n, image, min_side, max_side):
    """As benchmarks/bench_detection_ops.py: top-left corner uniform in the image, sides uniform
    in [min_side, max_side], clipped to the image."""
    xy = rng.uniform(0, image, (n, 2))
    wh = rng.uniform(min_side, max_side, (n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, image)], axis=1).astype(np.float32)


def nms_case(n, rng, smoke):
    if smoke:
        n //= 20
    boxes, scores = random_boxes(rng, n, 800.0, 8, 200), rng.random(n).astype(np.float32)
    threshold = 0.5

    def minidl_side(env):
        b, sc = env.m_tensor(boxes), env.m_tensor(scores)
        return (lambda: ops.nms(b, sc, threshold)), (lambda: to_np(ops.nms(b, sc, threshold)))

    def torch_side(env):
        env.need_torch(vision=True)
        nms, b, sc = env.tv.ops.nms, env.t_tensor(boxes), env.t_tensor(scores)
        return (lambda: nms(b, sc, threshold)), (lambda: to_np(nms(b, sc, threshold)))
    return Case(f"nms N={n} iou={threshold}", 1.0, minidl_side, torch_side, kind="indices")


def roi_case(which, rng, smoke):
    """roi_pool / roi_align fwd+bwd; the RoIs as in bench_detection_ops.py (sides 16 px to half
    the image, image = feature size / spatial_scale), the image index drawn per RoI."""
    n, c, h, w, k = (2, 256, 50, 50, 512) if not smoke else (2, 8, 20, 20, 16)
    scale, size = 1 / 16, (7, 7)
    image = h / scale
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    rois = np.concatenate([rng.integers(0, n, (k, 1)).astype(np.float32),
                           random_boxes(rng, k, image, 16, image / 2)], axis=1)
    grad = rng.standard_normal((k, c) + size, dtype=np.float32)
    extra = ", sampling_ratio -1, aligned False" if which == "roi_align" else ""
    name = f"{which} fwd+bwd ({n},{c},{h},{w}) {k} RoIs {size[0]}x{size[1]} scale 1/16{extra}"

    def side(lib_ops, tensor, array):
        xt, rt = tensor(x, True), tensor(rois)

        def forward():
            if which == "roi_pool":
                return lib_ops.roi_pool(xt, rt, size, scale)
            return lib_ops.roi_align(xt, rt, size, spatial_scale=scale, sampling_ratio=-1,
                                     aligned=False)
        return fwd_bwd(forward, {"x": xt}, array(grad))

    def minidl_side(env):
        return side(ops, env.m_tensor, env.m_array)

    def torch_side(env):
        env.need_torch(vision=True)
        return side(env.tv.ops, env.t_tensor, env.t_tensor)
    return Case(name, 1.0, minidl_side, torch_side)


def norm_case(which, shape, rng, smoke):
    """batch_norm (with running statistics, updated in place) or instance_norm (none), training
    mode, affine; grads of input, weight, bias."""
    if smoke:
        shape = (2, shape[1] // 16, 8, 8)
    n, c, h, w = shape
    x = rng.standard_normal(shape, dtype=np.float32)
    weight = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
    bias = (0.1 * rng.standard_normal(c)).astype(np.float32)
    grad = rng.standard_normal(shape, dtype=np.float32)
    name = f"{which} fwd+bwd train ({n},{c},{h},{w})"

    def side(functional, tensor, array):
        xt, wt, bt = tensor(x, True), tensor(weight, True), tensor(bias, True)
        running_mean, running_var = array(np.zeros(c, np.float32)), array(np.ones(c, np.float32))

        def forward():
            if which == "batch_norm":
                return functional.batch_norm(xt, running_mean, running_var, wt, bt, training=True,
                                             momentum=0.1, eps=1e-5)
            return functional.instance_norm(xt, weight=wt, bias=bt, eps=1e-5)
        return fwd_bwd(forward, {"x": xt, "w": wt, "b": bt}, array(grad))

    def minidl_side(env):
        return side(F, env.m_tensor, env.m_array)

    def torch_side(env):
        return side(env.need_torch().nn.functional, env.t_tensor, env.t_tensor)
    return Case(name, 1.5, minidl_side, torch_side)


def fcn_case(smoke, rounds):
    images, size, batch = (256, 64, 16) if not smoke else (32, 64, 16)
    name = f"FCN epoch fcn_shapes {images} scenes {size}x{size} batch {batch} Adam"
    shared = {}
    starts = range(0, images - batch + 1, batch)

    def minidl_side(env):
        from minidl.data import ShapesDataset
        from minidl.models import pretrained
        ds = ShapesDataset(images, size, "scene", seed=0, target_keys="semantic_mask")
        x = np.stack([ds[i][0] for i in range(len(ds))]).astype(np.float32)
        y = np.stack([ds[i][1] for i in range(len(ds))]).astype(np.int64)
        model = pretrained.build("fcn_shapes")
        model.train()
        # the torch side runs right after this side's check (which does not train): it copies
        # these very weights and data
        shared.update(x=x, y=y, model=model)
        model.to(env.device)
        opt = minidl.optim.Adam(model.parameters(), lr=1e-3)
        xd, yd = env.m_array(x), env.m_array(y)

        def epoch():
            for s in starts:
                loss = F.cross_entropy(model(minidl.Tensor(xd[s:s + batch])), yd[s:s + batch])
                opt.zero_grad()
                loss.backward()
                opt.step()

        def check():
            model.eval()
            with minidl.no_grad():
                scores = model(minidl.Tensor(xd[:2]))
            model.train()
            return {"scores": to_np(scores)}
        return epoch, check

    def torch_side(env):
        torch = env.need_torch()
        from bench_fcn_epoch import torch_fcn
        x, y, model = shared["x"], shared["y"], shared["model"]
        tmodel = torch_fcn(torch, model)             # weights copied (state_dict -> host)
        n_minidl = sum(int(p.data.size) for p in model.parameters())
        n_torch = sum(p.numel() for p in tmodel.parameters())
        if n_minidl != n_torch:
            raise AssertionError(f"parameter counts differ: minidl {n_minidl}, torch {n_torch}")
        tmodel = tmodel.to(env.tdev)
        tmodel.train()
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        xd, yd = env.t_tensor(x), env.t_tensor(y)
        TF = torch.nn.functional

        def epoch():
            for s in starts:
                loss = TF.cross_entropy(tmodel(xd[s:s + batch]), yd[s:s + batch])
                topt.zero_grad()
                loss.backward()
                topt.step()

        def check():
            tmodel.eval()
            with torch.no_grad():
                scores = tmodel(xd[:2])
            tmodel.train()
            return {"scores": to_np(scores)}
        return epoch, check
    # bench_fcn_epoch checks the twin with atol 1e-3: nine layers deep, the sums differ more
    return Case(name, 2.0, minidl_side, torch_side, repeats=1, rounds=min(rounds, FCN_MAX_ROUNDS),
                warmup=1, switch=False, loose=True, atol=1e-3)


def all_cases(args):
    """The case list (cheap: data are drawn here, devices touched only when a case runs)."""
    rng = np.random.default_rng(0)
    cases = []
    try:
        from bench_conv import SHAPES
        cases += [conv_case(shape, rng, args.smoke) for shape in SHAPES]
    except Exception as error:
        traceback.print_exc()
        failed = error

        def broken(env):
            raise RuntimeError(f"importing bench_conv.SHAPES failed: {short(failed)}")
        cases.append(Case("conv2d / conv_transpose2d (bench_conv SHAPES)", 2.0, broken, broken))
    cases += [nms_case(n, rng, args.smoke) for n in (1000, 5000, 20000)]
    cases += [roi_case(which, rng, args.smoke) for which in ("roi_pool", "roi_align")]
    cases += [norm_case(which, shape, rng, args.smoke)
              for which in ("batch_norm", "instance_norm")
              for shape in ((32, 64, 64, 64), (16, 128, 32, 32))]
    cases.append(fcn_case(args.smoke, args.rounds))
    if args.only:
        cases = [c for c in cases if any(s.lower() in c.name.lower() for s in args.only)]
    return cases


# ---- running one case ------------------------------------------------------------------------
def interleaved(candidates, rounds, repeats, warmup, switch, errors):
    """candidates: {side: (fn, timer)}. Warm-up, then rounds A B A B ...; a side that raises is
    dropped (its message in ``errors``) and the others go on. Returns {side: [ms per call]}."""
    active = dict(candidates)
    samples = {side: [] for side in candidates}

    def guarded(side, action):
        try:
            action()
        except Exception as error:
            print(f"--- {side} failed while timing:", file=sys.stderr)
            traceback.print_exc()
            errors[side] = short(error)
            active.pop(side, None)

    for side, (fn, _) in list(active.items()):
        guarded(side, lambda: [fn() for _ in range(warmup)])
    for _ in range(rounds):
        for side, (fn, timer) in list(active.items()):
            def timed():
                if switch:
                    fn()                      # untimed: the switch from the other side
                samples[side].append(timer(fn, repeats))
            guarded(side, timed)
    return samples


def run_case(case, env, args):
    row = {"case": case.name, "target": case.target, "minidl_ms": None, "torch_ms": None,
           "ratio": None, "met": None, "match": None, "max_scaled_diff": None, "error": None,
           "torch_error": None, "note": "", "repeats": None, "rounds": None}
    started = time.perf_counter()
    # minidl: build and check once (the first call also compiles CuPy kernels)
    try:
        m_fn, m_check = case.minidl_side(env)
        ours = m_check()
    except Exception as error:
        print(f"--- {case.name}: minidl failed:", file=sys.stderr)
        traceback.print_exc()
        row["error"] = short(error)
        return row
    # torch: build and check once
    t_fn = theirs = None
    try:
        t_fn, t_check = case.torch_side(env)
        theirs = t_check()
    except Unavailable as why:
        row["note"] = str(why)
        t_fn = None
    except Exception as error:
        print(f"--- {case.name}: torch failed:", file=sys.stderr)
        traceback.print_exc()
        row["torch_error"] = short(error)
        t_fn = None
    if theirs is not None:
        try:
            if case.kind == "indices":
                ok, worst, note, details = compare_indices(ours, theirs)
            else:
                loose = case.loose and env.tf32
                ok, worst, note, details = compare(ours, theirs, rtol=1e-2 if loose else 1e-3,
                                                   atol=1e-2 if loose else case.atol)
            row["match"], row["max_scaled_diff"], row["check"] = ok, worst, details
            if note:
                row["note"] = note
        except Exception as error:
            traceback.print_exc()
            row["match"], row["note"] = False, f"check failed: {short(error)}"
    # timing
    rounds = case.rounds or args.rounds
    warmup = args.warmup if case.warmup is None else min(case.warmup, args.warmup)
    candidates = {"minidl": (m_fn, env.timer("minidl"))}
    if t_fn is not None:
        candidates["torch"] = (t_fn, env.timer("torch"))
    repeats = case.repeats
    errors = {}
    if repeats is None:
        repeats = 1
        if not args.smoke:
            # warm up minidl first, then size the block from one timed call
            probe = interleaved({"minidl": candidates["minidl"]}, 1, 1, warmup, False, errors)
            if probe["minidl"]:
                repeats = max(1, min(MAX_REPEATS, math.ceil(BLOCK_MS / max(probe["minidl"][0], 1e-3))))
    if "minidl" not in errors:
        samples = interleaved(candidates, rounds, repeats, warmup, case.switch, errors)
    else:
        samples = {}
    row["repeats"], row["rounds"] = repeats, rounds
    if "minidl" in errors:
        row["error"] = errors["minidl"]
    elif samples.get("minidl"):
        row["minidl_ms"] = statistics.median(samples["minidl"])
        row["minidl_samples_ms"] = samples["minidl"]
    if "torch" in errors:
        row["torch_error"] = errors["torch"]
    elif samples.get("torch"):
        row["torch_ms"] = statistics.median(samples["torch"])
        row["torch_samples_ms"] = samples["torch"]
    if row["minidl_ms"] is not None and row["torch_ms"]:
        row["ratio"] = row["minidl_ms"] / row["torch_ms"]
        row["met"] = row["ratio"] <= case.target
    row["seconds"] = time.perf_counter() - started
    return row


# ---- output ----------------------------------------------------------------------------------
COLUMNS = "| case | minidl ms | torch ms | ratio | target | met? | match (max diff/scale) | note |"


def fmt_ms(v):
    return "-" if v is None else (f"{v:.3f}" if v < 100 else f"{v:.1f}")


def table_row(row):
    target = f"<= {row['target']:.1f}"
    if row["error"]:
        label = row["error"] if row["error"].startswith("SKIPPED") else f"ERROR: {row['error']}"
        return (f"| {row['case']} | {label} | {fmt_ms(row['torch_ms'])} | - | {target} "
                f"| - | - | {row['note']} |")
    match = "-"
    if row["match"] is not None:
        worst = row["max_scaled_diff"]
        match = ("yes" if row["match"] else "no") + (f" {worst:.1e}" if worst is not None else "")
    notes = [row["note"]] if row["note"] else []
    if row["torch_error"]:
        notes.append(f"torch ERROR: {row['torch_error']}")
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    met = "-" if row["met"] is None else ("yes" if row["met"] else "no")
    return (f"| {row['case']} | {fmt_ms(row['minidl_ms'])} | {fmt_ms(row['torch_ms'])} | {ratio} | "
            f"{target} | {met} | {match} | {'; '.join(notes).replace('|', '/')} |")


def write_json(path, header, rows):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"header": header, "results": rows}, f, indent=1, default=str)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, 1 round, no warm-up: checks the script logic")
    parser.add_argument("--only", nargs="+", metavar="SUBSTRING",
                        help="run the cases whose name contains one of these (case-insensitive)")
    parser.add_argument("--json", metavar="PATH", help="write the results here as JSON")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per side (default 2)")
    parser.add_argument("--budget", type=float, default=140.0,
                        help="seconds; cases not started by then are skipped (default 140)")
    parser.add_argument("--case-timeout", type=float, default=90.0,
                        help="seconds; a case still running then dumps the stacks and ends the "
                             "script with exit status 1 (a hung kernel); 0: no limit (default 90)")
    parser.add_argument("--torch-tf32", action="store_true",
                        help="leave torch's TF32 convolutions on (default: IEEE float32 both sides)")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 9
    if args.warmup is None:
        args.warmup = 0 if args.smoke else 2
    args.rounds = max(1, args.rounds)
    t0 = time.perf_counter()

    env = Env(args)
    header = header_info(env, args)
    if env.device == "cuda":
        print(f"GPU: {header.get('gpu')}, driver {version_text(header.get('driver_version'))}, "
              f"CUDA runtime {version_text(header.get('runtime_version'))}, CuPy {header.get('cupy')}")
        if not header["minidl_kernels"].get("cuda"):
            print("WARNING: minidl._C_cuda is not usable: minidl runs its NumPy-style references on CuPy",
                  file=sys.stderr)
    else:
        print(f"CPU: {header.get('cpu')}, {header.get('cpu_count')} threads (perf_counter timing)")
    print(f"torch {header.get('torch')}, torchvision {header.get('torchvision')}, "
          f"cuDNN {header.get('cudnn', '-')}, cudnn.benchmark {header.get('cudnn_benchmark', '-')}, "
          f"torch fp32: {header.get('torch_fp32_precision', '-')}"
          + (f" ({env.torch_note})" if env.torch_note else ""))
    print(f"minidl kernels {header['minidl_kernels']}, commit {header.get('minidl_commit')}; "
          f"{args.rounds} interleaved rounds, {args.warmup} warm-up calls, medians"
          + (" [SMOKE: tiny sizes]" if args.smoke else ""))
    print()
    print(COLUMNS)
    print("|---" * (COLUMNS.count("|") - 1) + "|", flush=True)

    cases = all_cases(args)
    if not cases:
        print(f"no case name contains any of {args.only}", file=sys.stderr)
        return 2
    rows, failed = [], False
    for case in cases:
        if time.perf_counter() - t0 > args.budget:
            row = {"case": case.name, "target": case.target, "error": "SKIPPED (time budget)",
                   "note": f"--budget {args.budget:.0f} s"}
            row.update({k: None for k in ("minidl_ms", "torch_ms", "ratio", "met", "match",
                                          "max_scaled_diff", "torch_error")})
        else:
            if args.case_timeout > 0:
                faulthandler.dump_traceback_later(args.case_timeout, exit=True)
            row = run_case(case, env, args)
            faulthandler.cancel_dump_traceback_later()
        failed |= bool(row["error"] or row["torch_error"] or row["match"] is False)
        rows.append(row)
        print(table_row(row), flush=True)
        write_json(args.json, header, rows)
        env_cleanup(env)
    total = time.perf_counter() - t0
    errors = sum(bool(r["error"] or r["torch_error"]) for r in rows)
    mismatches = sum(r["match"] is False for r in rows)
    missed = sum(r["met"] is False for r in rows)
    print(f"\n{len(rows)} cases in {total:.0f} s: {errors} with errors, {mismatches} not matching "
          f"torch, {missed} missing their target")
    header["total_seconds"] = total
    write_json(args.json, header, rows)
    return 1 if failed else 0


def env_cleanup(env):
    """Give cached device memory back between cases (both pools grow otherwise)."""
    import gc
    gc.collect()
    if env.device == "cuda":
        try:
            env.cp.get_default_memory_pool().free_all_blocks()
            if env.torch is not None:
                env.torch.cuda.empty_cache()
        except Exception:
            traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
