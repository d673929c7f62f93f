"""A small training loop: ``fit`` (epochs of forward / backward / step with a progress bar).

Lecture idea: every model in the course trains the same way —

    for each batch:  loss = loss_fn(model(x), y);  optimizer.zero_grad();  loss.backward();
                     optimizer.step()

``fit`` is exactly that loop plus what one would otherwise rewrite every time: moving batches
to the model's device, a tqdm progress bar, an evaluation callback after each epoch, a
learning-rate schedule, seeding, and a history of the losses for plotting. It also looks at
each loss before ``backward``: a NaN or infinite loss stops training (or, by choice, skips that
batch) with a message naming the step, so one bad batch never turns the weights into NaN.

``config_grid`` and ``sweep`` choose hyper-parameters. Lecture idea (CS231n lecture 8, the
multi-task loss of classification + localization): a hyper-parameter that weights the terms of
the loss — ``L = L_cls + box_weight · L_box`` — or picks its form (L2 vs smooth L1) *changes the
loss function itself*, so final loss values of different settings are not comparable (a larger
weight gives a larger loss even for a better model). Choose such a hyper-parameter by a
*performance metric* measured on held-out data; ``SweepResult.best_by_loss`` shows what the
training loss would have picked instead.
"""
from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .autograd import Tensor, no_grad


def to_tensor(batch, device="cpu"):
    """Turn arrays inside a batch (arrays, tuples, lists, dicts) into Tensors on ``device``.

    Floating arrays become float32 unless already float64; integer arrays stay integer.
    """
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, (np.ndarray,)) or backend.is_cupy_array(batch):
        return Tensor(backend.to_device(batch, device))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_tensor(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_tensor(v, device) for k, v in batch.items()}
    return batch


def model_device(model) -> str:
    """Where ``model`` lives: the device of its first parameter (``"cpu"`` without parameters).
    Helpers that feed a model NumPy data put it there (``Tensor(x, device=model_device(m))``)."""
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else "cpu"


def host_float32(images):
    """Images (a NumPy/CuPy array, a Tensor or nested lists) as a float32 NumPy array: what the
    prediction helpers batch on the host before each batch goes to ``model_device(model)``."""
    data = images.data if isinstance(images, Tensor) else images
    return backend.to_numpy(data).astype(np.float32, copy=False)


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _progress_bar(total, enabled):
    """One bar for the whole run (steps over all epochs), refreshed at most once a second."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="training", unit="step", mininterval=1.0, leave=False)


def _nonfinite_parameters(model):
    """Names of the parameters that hold a NaN or an infinity."""
    return [name for name, p in model.named_parameters()
            if not bool(backend.get_array_module(p.data).isfinite(p.data).all())]


def fit(model, loader, loss_fn, optimizer, epochs=1, *, device=None, scheduler=None,
        eval_fn=None, progress=True, seed=None, max_seconds=None, on_nonfinite="raise"):
    """Train ``model`` and return a history dict.

    loader: an iterable of ``(inputs, targets)`` batches (NumPy arrays or Tensors); it is
        iterated once per epoch (a DataLoader reshuffles itself each time).
    loss_fn: ``loss_fn(model(inputs), targets) -> scalar Tensor``; for models with several
        outputs or targets, pass a function ``loss_fn(model, inputs, targets)`` with
        ``loss_fn.takes_model = True``.
    eval_fn: called as ``eval_fn(model)`` after each epoch, in eval mode and without a graph;
        its return value (a number or dict) is stored in ``history["eval"]``.
    device: where to run (default: where the model's first parameter lives).
    seed: seeds minidl's default generator (dropout, initializers that use it) first.
    max_seconds: stop after the epoch in which this wall-clock budget is exceeded.
    on_nonfinite: what a NaN or infinite loss does. The loss is checked *before* backward and
        the optimizer step, so that batch never touches the weights.
        ``"raise"`` (default): stop with ``FloatingPointError`` naming the loss, the step (counted
        from 1 over all epochs), the epoch and the batch index within the epoch (from 0).
        ``"skip"``: warn (``RuntimeWarning``, same names), skip that batch's update and count it
        in ``history["skipped"]``.
        Either way, a step that makes a weight non-finite although the loss was finite (a
        gradient or an update that overflows) stops training with ``FloatingPointError`` naming
        the step and the parameters: nothing can recover from that.

    Returns ``{"loss": the loss of every step (a skipped step's NaN/inf included), "epoch_loss":
    the mean per epoch over the batches applied, "eval": [...], "skipped": number of batches
    skipped, "seconds": s}``.
    """
    if on_nonfinite not in ("raise", "skip"):
        raise ValueError(f"fit: on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
    if seed is not None:
        backend.manual_seed(seed)
    if device is None:
        device = model_device(model)
    history = {"loss": [], "epoch_loss": [], "eval": [], "skipped": 0, "seconds": 0.0}
    start = time.perf_counter()
    takes_model = getattr(loss_fn, "takes_model", False)
    bar = _progress_bar(epochs * len(loader) if hasattr(loader, "__len__") else None, progress)
    step = 0                                        # counts batches over all epochs, from 1
    try:
        for epoch in range(epochs):
            model.train()
            losses = []                             # this epoch's losses of the batches applied
            for batch, (inputs, targets) in enumerate(loader):
                step += 1
                where = f"step {step} (epoch {epoch + 1}, batch index {batch})"
                inputs, targets = to_tensor(inputs, device), to_tensor(targets, device)
                loss = loss_fn(model, inputs, targets) if takes_model else loss_fn(model(inputs), targets)
                value = float(loss.item())
                history["loss"].append(value)
                bar.update()
                if not np.isfinite(value):
                    # Before backward: the weights are still those of the last good step.
                    if on_nonfinite == "raise":
                        raise FloatingPointError(
                            f"fit: the loss is {value} at {where}; the weights are left as they were before "
                            "this batch. Check its inputs and targets (a batch whose targets are all "
                            "ignore_index has a NaN mean loss), lower the learning rate, or pass "
                            "on_nonfinite='skip' to skip such batches")
                    warnings.warn(f"fit: the loss is {value} at {where}: skipping this batch (no optimizer "
                                  "step)", RuntimeWarning, stacklevel=2)
                    history["skipped"] += 1
                    continue
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bad = _nonfinite_parameters(model)
                if bad:
                    raise FloatingPointError(
                        f"fit: the loss was {value} at {where} but the step made parameters {bad[:3]} "
                        "non-finite (a gradient or the update overflowed); lower the learning rate, or "
                        "check the inputs and targets")
                losses.append(value)
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses):.4f}" if losses else "n/a", refresh=False)
            history["epoch_loss"].append(float(np.mean(losses)) if losses else float("nan"))
            if scheduler is not None:
                scheduler.step()
            if eval_fn is not None:
                model.eval()
                with no_grad():
                    history["eval"].append(eval_fn(model))
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
    finally:
        bar.close()                                 # also when a FloatingPointError stops training
    model.eval()
    history["seconds"] = time.perf_counter() - start
    return history


def predict(model, inputs, batch_size=256, device=None):
    """Run ``model`` in eval mode without a graph over ``inputs`` in batches; NumPy output."""
    model.eval()
    if device is None:
        device = model_device(model)
    outs = []
    with no_grad():
        for i in range(0, len(inputs), batch_size):
            outs.append(model(to_tensor(inputs[i:i + batch_size], device)).numpy())
    return np.concatenate(outs) if outs else np.zeros((0,))


# ---- hyper-parameter sweeps: choose by a validation metric, not by the training loss --------------

def config_grid(**axes):
    """Every combination of the given hyper-parameter values, as a list of config dicts.

    ``config_grid(box_weight=(0.1, 1), box_loss=("l2", "smooth_l1"))`` gives
    ``[{box_weight: 0.1, box_loss: "l2"}, {0.1, "smooth_l1"}, {1, "l2"}, {1, "smooth_l1"}]``:
    the order of nested for loops written in the keyword order (the first axis varies slowest,
    the last fastest), so the list has ``len(axis_1) * len(axis_2) * ...`` configs.
    """
    if not axes:
        raise ValueError("config_grid: give at least one axis, e.g. config_grid(lr=(1e-3, 1e-2))")
    values = {}
    for name, options in axes.items():
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise ValueError(f"config_grid: axis {name!r} must be a list or tuple of values, got {options!r}")
        values[name] = list(options)
        if not values[name]:
            raise ValueError(f"config_grid: axis {name!r} has no values")
    return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]


@dataclass
class SweepRow:
    """One trained config: its final training loss (as ``train_fn`` reported it), the validation
    metrics (a dict, as ``evaluate_fn`` returned them) and the wall-clock seconds of both."""
    config: dict
    loss: float
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


def _config_label(config):
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items())


class SweepResult:
    """The rows of a sweep (in the order of the configs) and the two choices one could make.

    ``best``: the row with the best validation ``metric`` (highest, or lowest when
    ``higher_is_better`` is False); ties go to the first such row. ``best_by_loss``: the row with
    the lowest final training loss (finite losses only; ``None`` when none is finite) — what
    choosing by the loss would pick, to compare (it is the wrong rule when the configs change
    the loss function).
    """

    def __init__(self, rows, metric, higher_is_better=True):
        if not rows:
            raise ValueError("SweepResult: no rows")
        self.rows, self.metric, self.higher_is_better = list(rows), metric, bool(higher_is_better)

    @property
    def best(self):
        best = self.rows[0]
        for row in self.rows[1:]:       # strict improvement only: a tie keeps the earlier row
            value, current = row.metrics[self.metric], best.metrics[self.metric]
            if (value > current) if self.higher_is_better else (value < current):
                best = row
        return best

    @property
    def best_by_loss(self):
        finite = [row for row in self.rows if math.isfinite(row.loss)]
        return min(finite, key=lambda row: row.loss) if finite else None   # min keeps the first on a tie

    def metric_names(self):
        names = []
        for row in self.rows:
            names += [n for n in row.metrics if n not in names]
        return names

    def table(self):
        """``(rows, header)`` for ``Report.table(rows, header)`` or printing: one row per config —
        the config's values, the final training loss, every metric, the seconds, and "picked by"
        ("metric", "loss", "metric + loss" or "")."""
        keys = []
        for row in self.rows:
            keys += [k for k in row.config if k not in keys]
        metrics = self.metric_names()
        best, by_loss = self.best, self.best_by_loss
        out = []
        for row in self.rows:
            picked = [who for who, chosen in (("metric", best), ("loss", by_loss)) if row is chosen]
            out.append([row.config.get(k, "") for k in keys] + [row.loss]
                       + [row.metrics.get(m, float("nan")) for m in metrics] + [row.seconds, " + ".join(picked)])
        return out, keys + ["train loss"] + metrics + ["seconds", "picked by"]

    def __str__(self):
        rows, header = self.table()
        cells = [header] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)

    def plot(self, ax=None):
        """Two bar charts side by side, one bar per config (top to bottom in sweep order, each bar
        labelled with its value): the final training loss (log scale when every loss is positive)
        and the validation metric. The metric's choice is red, the loss's choice is hatched.
        ``ax``: a pair of matplotlib Axes to draw into (default: a new figure). Returns the Figure."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(11, 0.45 * len(self.rows) + 1.8), sharey=True)
        if not (hasattr(ax, "__len__") and len(ax) == 2):
            raise ValueError(f"SweepResult.plot: ax must be a pair of Axes (loss, metric), got {ax!r}")
        loss_ax, metric_ax = ax
        labels = [_config_label(row.config) for row in self.rows]
        best, by_loss = self.best, self.best_by_loss
        colours = ["tab:red" if row is best else "tab:gray" for row in self.rows]
        hatches = ["//" if row is by_loss else "" for row in self.rows]
        losses = [row.loss for row in self.rows]
        for axis, values in ((loss_ax, losses), (metric_ax, [row.metrics[self.metric] for row in self.rows])):
            for k, (value, colour, hatch) in enumerate(zip(values, colours, hatches)):
                axis.barh(k, value, color=colour, hatch=hatch, edgecolor="black", linewidth=0.5)
                axis.annotate(f" {value:.3g}", (value, k), va="center", fontsize=7)
            axis.set_yticks(range(len(labels)))
            axis.set_yticklabels(labels, fontsize=8)
            axis.set_ylim(len(labels) - 0.5, -0.5)      # first config on top, as in the table
        if all(math.isfinite(v) and v > 0 for v in losses):
            loss_ax.set_xscale("log")                   # losses of different settings can differ 100-fold
        loss_ax.set_xlabel("final training loss" + (" (log scale)" if loss_ax.get_xscale() == "log" else ""))
        loss_ax.set_title("lowest training loss (hatched):\n"
                          + (_config_label(by_loss.config) if by_loss else "none"), fontsize=9)
        metric_ax.set_xlabel(f"validation {self.metric}")
        metric_ax.set_title(f"{'highest' if self.higher_is_better else 'lowest'} validation {self.metric} "
                            f"(red):\n{_config_label(best.config)}", fontsize=9)
        metric_ax.margins(x=0.12)                       # room for the value labels
        fig = loss_ax.figure
        fig.tight_layout()
        return fig


def sweep(configs, train_fn, evaluate_fn, metric, higher_is_better=True, progress=True, seed=None):
    """Train and evaluate one model per config; return a ``SweepResult`` that chooses by ``metric``.

    configs: a list of dicts (e.g. from ``config_grid``), tried in this order.
    train_fn: ``train_fn(config) -> (trained, final_loss)``: trains a model for that config and
        returns whatever ``evaluate_fn`` needs (the model) and the final training loss as a number
        (e.g. the mean loss of the last steps).
    evaluate_fn: ``evaluate_fn(trained) -> {name: value}`` (or a single number, stored under
        ``metric``), measured on *held-out* data.
    metric: the name of the value that chooses; ``higher_is_better`` says which way.
    seed: if given, ``minidl.backend.manual_seed(seed)`` runs before each ``train_fn``, so every
        config starts from the same state of minidl's default generator (dropout, initialisers
        that use it). A ``train_fn`` with its own generator should seed it from a closure, or from
        a ``"seed"`` axis of the grid (then each seed is a row of its own).
    progress: print one line per config as it finishes.

    Raises ``ValueError`` for an empty ``configs``, a metric name that ``evaluate_fn`` does not
    return, or a NaN/infinite metric (which config it was is named). A NaN training loss is kept
    (a diverged run) and never chosen by ``best_by_loss``.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("sweep: configs is empty (config_grid(...) builds a list of config dicts)")
    for config in configs:
        if not isinstance(config, dict):
            raise TypeError(f"sweep: each config must be a dict, got {type(config).__name__}")
    rows = []
    for i, config in enumerate(configs):
        start = time.perf_counter()
        if seed is not None:
            backend.manual_seed(seed)
        out = train_fn(config)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"sweep: train_fn must return (trained, final_loss), got {type(out).__name__}")
        trained, loss = out
        metrics = evaluate_fn(trained)
        if not isinstance(metrics, dict):
            metrics = {metric: metrics}
        if metric not in metrics:
            raise ValueError(f"sweep: metric {metric!r} is not among the values evaluate_fn returns: "
                             f"{sorted(metrics)}")
        metrics = {name: float(value) for name, value in metrics.items()}
        if not math.isfinite(metrics[metric]):
            raise ValueError(f"sweep: the validation {metric} of config {config} is {metrics[metric]}; a metric "
                             "must be a finite number to rank configs (did training diverge?)")
        rows.append(SweepRow(dict(config), float(loss), metrics, time.perf_counter() - start))
        if progress:
            print(f"[sweep {i + 1}/{len(configs)}] {_config_label(config)}: train loss {float(loss):.4g}, "
                  + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
                  + f" ({rows[-1].seconds:.1f} s)", flush=True)
    return SweepResult(rows, metric, higher_is_better)
