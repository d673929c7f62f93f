"""A small training loop: ``fit`` (epochs of forward / backward / step with a progress bar).

Lecture idea: every model in the course trains the same way —

    for each batch:  loss = loss_fn(model(x), y);  optimizer.zero_grad();  loss.backward();
                     optimizer.step()

``fit`` is exactly that loop plus what one would otherwise rewrite every time: moving batches
to the model's device, a tqdm progress bar, an evaluation callback after each epoch, a
learning-rate schedule, seeding, and a history of the losses for plotting. It also looks at
each loss before ``backward``: a NaN or infinite loss stops training (or, by choice, skips that
batch) with a message naming the step, so one bad batch never turns the weights into NaN.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from . import backend
from .tensor import Tensor, no_grad


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
