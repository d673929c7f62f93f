"""A small training loop: ``fit`` (epochs of forward / backward / step with a progress bar).

Lecture idea: every model in the course trains the same way —

    for each batch:  loss = loss_fn(model(x), y);  optimizer.zero_grad();  loss.backward();
                     optimizer.step()

``fit`` is exactly that loop plus what one would otherwise rewrite every time: moving batches
to the model's device, a tqdm progress bar, an evaluation callback after each epoch, a
learning-rate schedule, seeding, and a history of the losses for plotting.
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


def _check_finite_weights(model, loss, epoch, step):
    """After a non-finite loss: stop if the step made the weights non-finite (training cannot
    recover, and every later number would be NaN); otherwise warn and go on (a batch whose
    targets are all ignored has a NaN mean loss but a zero gradient)."""
    where = f"epoch {epoch + 1}, step {step}"
    bad = [name for name, p in model.named_parameters()
           if not bool(backend.get_array_module(p.data).isfinite(p.data).all())]
    if bad:
        raise FloatingPointError(f"fit: the loss was {loss} at {where} and parameters {bad[:3]} are no longer "
                                 "finite; lower the learning rate, or check the inputs and targets")
    warnings.warn(f"fit: the loss was {loss} at {where} (the weights are still finite: e.g. a batch whose "
                  "targets are all ignore_index)", RuntimeWarning, stacklevel=3)


def fit(model, loader, loss_fn, optimizer, epochs=1, *, device=None, scheduler=None,
        eval_fn=None, progress=True, seed=None, max_seconds=None):
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

    Returns ``{"loss": per-step losses, "epoch_loss": mean per epoch, "eval": [...], "seconds": s}``.
    """
    if seed is not None:
        backend.manual_seed(seed)
    if device is None:
        device = model_device(model)
    history = {"loss": [], "epoch_loss": [], "eval": [], "seconds": 0.0}
    start = time.perf_counter()
    takes_model = getattr(loss_fn, "takes_model", False)
    bar = _progress_bar(epochs * len(loader) if hasattr(loader, "__len__") else None, progress)
    for epoch in range(epochs):
        model.train()
        losses = []
        for inputs, targets in loader:
            inputs, targets = to_tensor(inputs, device), to_tensor(targets, device)
            loss = loss_fn(model, inputs, targets) if takes_model else loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
            if not np.isfinite(losses[-1]):
                _check_finite_weights(model, losses[-1], epoch, len(losses))
            bar.update()
        bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses):.4f}" if losses else "n/a", refresh=False)
        history["loss"].extend(losses)
        history["epoch_loss"].append(float(np.mean(losses)) if losses else float("nan"))
        if scheduler is not None:
            scheduler.step()
        if eval_fn is not None:
            model.eval()
            with no_grad():
                history["eval"].append(eval_fn(model))
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    bar.close()
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
