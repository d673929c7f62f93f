"""Author the solution notebooks from the cell lists below (run once after editing a cell list).

Keeping the cells as Python strings makes the notebooks reviewable in a diff; the generated
``*_solution.ipynb`` files are what students and the tests use.

    python assignments/build_notebooks.py
"""
from __future__ import annotations

import pathlib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent


def notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in cells:
        text = text.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
    return nb


AUTOGRAD = [
    ("md", """
# Assignment 1 — autograd from the inside

You will write a differentiable operation for minidl the way every op in `minidl/functional` is written:
a `Function` with a `forward` and a `backward` side by side, then prove it right with a gradient check
(central differences in float64), and finally train a small network with it.

Run a cell with Shift+Enter. Each **check** cell prints the relative error and says OK or WRONG.
Run only this assignment's tests with `pytest -m assignment1`.
"""),
    ("code", """
import numpy as np
import minidl
import minidl.functional as F
from minidl import Function, tensor, backend
from minidl.checks import check_function, check_gradients
"""),
    ("md", """
## Part 1 — the sigmoid gate

Forward: $\\sigma(x) = 1 / (1 + e^{-x})$. Backward: $\\partial L/\\partial x = \\partial L/\\partial y \\cdot \\sigma(x)(1-\\sigma(x))$.

Write both. Use `xp = backend.get_array_module(x)` instead of `np` so your op also runs on a GPU, and make the
forward *stable*: `exp(-x)` overflows for very negative `x` — compute with `exp(-|x|)` in two branches.
Save what backward needs with `ctx.save_for_backward(...)`.
"""),
    ("code", """
class MySigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = backend.get_array_module(x)
        ### BEGIN SOLUTION
        e = xp.exp(-xp.abs(x))
        out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_out):
        ### BEGIN SOLUTION
        (out,) = ctx.saved_tensors
        return grad_out * out * (1 - out)
        ### END SOLUTION
"""),
    ("code", """
# check: values against minidl's sigmoid (including huge inputs), then the gradient check
check_function("sigmoid forward", lambda x: MySigmoid.apply(tensor(x)), lambda x: F.sigmoid(tensor(x)),
               lambda rng: (rng.standard_normal((4, 5)) * 10,))
check_function("sigmoid at +-1000", lambda x: MySigmoid.apply(tensor(x)), lambda x: F.sigmoid(tensor(x)),
               lambda rng: (np.array([-1000.0, 1000.0, 0.0]),), trials=1)
check_gradients("sigmoid backward", MySigmoid.apply, [np.random.default_rng(0).standard_normal((3, 4))])
"""),
    ("md", """
## Part 2 — a softmax classifier's loss, from primitives

Write the mean softmax cross-entropy of scores `s` (N, C) for labels `y` (N,) using only minidl tensor
operations (`.max`, `.exp`, `.sum`, `.log`, indexing `s[rows, y]`, arithmetic). Subtract the row maximum
first (a constant shift does not change softmax but keeps `exp` finite). The autograd engine gives you the
gradient for free — the check compares it with `F.cross_entropy`'s hand-written backward.
"""),
    ("code", """
def my_cross_entropy(s, y):
    ### BEGIN SOLUTION
    shifted = s - s.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(s.shape[0]), y].mean()
    ### END SOLUTION
"""),
    ("code", """
labels = np.array([0, 2, 1, 1, 3])
check_function("cross-entropy value", lambda s: my_cross_entropy(tensor(s), labels),
               lambda s: F.cross_entropy(tensor(s), labels), lambda rng: (rng.standard_normal((5, 4)) * 3,))
check_gradients("cross-entropy gradient", lambda s: my_cross_entropy(s, labels),
                [np.random.default_rng(1).standard_normal((5, 4))])
"""),
    ("md", """
## Part 3 — train a two-layer network with your pieces

Use `MySigmoid` as the hidden nonlinearity and `my_cross_entropy` as the loss on the spiral data. The check
expects a training accuracy above 90 %.
"""),
    ("code", """
from minidl import nn, optim
from minidl.tour.mlp import spirals

X, y = spirals(n_per_class=100, rng=0)
rng = np.random.default_rng(0)
fc1, fc2 = nn.Linear(2, 64, rng=rng), nn.Linear(64, 3, rng=rng)
opt = optim.Adam(list(fc1.parameters()) + list(fc2.parameters()), lr=0.05)
for step in range(400):
    ### BEGIN SOLUTION
    scores = fc2(MySigmoid.apply(fc1(tensor(X))))
    loss = my_cross_entropy(scores, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    ### END SOLUTION
accuracy = float((fc2(MySigmoid.apply(fc1(tensor(X)))).numpy().argmax(1) == y).mean())
print(f"training accuracy {accuracy:.3f}")
assert accuracy > 0.9, "train longer or check your loss/backward"
"""),
]

NOTEBOOKS = {"01_autograd_solution.ipynb": AUTOGRAD}


def main():
    for name, cells in NOTEBOOKS.items():
        nbformat.write(notebook(cells), HERE / name)
        print("wrote", name)


if __name__ == "__main__":
    main()
