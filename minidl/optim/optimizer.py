"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam, AdamW.

Lecture idea: training is repeated small steps against the gradient. Momentum remembers a
running velocity so steps keep their direction through noise; Adam divides by a running
RMS of the gradient so every parameter gets a step of similar size; AdamW applies weight
decay directly to the weights instead of through the gradient. Updates run on the raw arrays
under no graph (they are not part of the model's computation), in place, on the device where
each parameter lives.
"""
from __future__ import annotations

from .. import backend


class Optimizer:
    """Holds parameter groups (list of dicts with "params" and hyper-parameters) and state."""

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for g in groups:
            group = dict(defaults)
            group.update(g)
            group["params"] = list(group["params"])
            self.param_groups.append(group)
        self.defaults = defaults
        self.state = {}                       # id(param) -> dict of running buffers

    def zero_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def _params_with_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, p.grad.data, self.state.setdefault(id(p), {})

    def step(self):
        raise NotImplementedError


def _check(name, value, low=0.0):
    if not value >= low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


class SGD(Optimizer):
    """p -= lr * v with v = momentum * v + (g + weight_decay * p) (PyTorch's formulation);
    Nesterov uses g + momentum * v as the step direction."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False, dampening=0.0):
        _check("lr", lr)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      nesterov=nesterov, dampening=dampening))

    def step(self):
        for group, p, g, state in self._params_with_grad():
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p.data
            if group["momentum"]:
                v = state.get("momentum_buffer")
                if v is None:
                    v = state["momentum_buffer"] = g.copy()
                else:
                    v *= group["momentum"]
                    v += (1 - group["dampening"]) * g
                g = g + group["momentum"] * v if group["nesterov"] else v
            p.data -= group["lr"] * g


class Adam(Optimizer):
    """Adam (Kingma & Ba): m, v running moments of g and g², bias-corrected; with
    ``decoupled_weight_decay`` it is AdamW (Loshchilov & Hutter)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        _check("lr", lr)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled=decoupled_weight_decay))

    def step(self):
        for group, p, g, state in self._params_with_grad():
            xp = backend.get_array_module(p.data)
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            if wd and group["decoupled"]:
                p.data *= 1 - lr * wd
            elif wd:
                g = g + wd * p.data
            if not state:
                state["step"] = 0
                state["m"] = xp.zeros_like(p.data)
                state["v"] = xp.zeros_like(p.data)
            state["step"] += 1
            m, v, t = state["m"], state["v"], state["step"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            step_size = lr / (1 - b1 ** t)
            denom = xp.sqrt(v / (1 - b2 ** t))
            denom += eps
            p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01, as in PyTorch)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)
