"""Guard of the one-code-path rule: array code gets its module from the data (``xp``).

In minidl.functional, minidl.ops and minidl.kernels, NumPy may be named only for things that
are not array computations on the data: dtypes, type checks and host-side constants. A call
like ``np.exp(x)`` would silently move a GPU computation to the host (or fail on CuPy), so
this test parses the sources and rejects any other use of ``np.<name>``.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "minidl"
CHECKED = ["functional", "ops", "kernels"]

# Names of numpy that do not compute on arrays: dtypes, scalar types, classes for isinstance.
ALLOWED = {
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_", "intp",
    "integer", "floating", "number", "generic", "ndarray", "dtype", "finfo", "iinfo", "newaxis",
    "pi", "inf", "nan", "e",
}


def numpy_uses(path):
    tree = ast.parse(path.read_text())
    aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for a in node.names if a.name == "numpy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            yield node.lineno, node.attr


def files():
    out = []
    for sub in CHECKED:
        folder = PACKAGE / sub
        if folder.is_dir():
            out.extend(sorted(folder.rglob("*.py")))
    return out


@pytest.mark.parametrize("path", files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_array_code_uses_xp_not_numpy(path):
    bad = [f"line {line}: np.{name}" for line, name in numpy_uses(path) if name not in ALLOWED]
    assert not bad, (f"{path.name} calls NumPy by name in array code (use "
                     f"xp = backend.get_array_module(x)): " + ", ".join(bad))


def test_the_guard_catches_a_violation(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import numpy as np\n\ndef f(x):\n    return np.exp(x) + np.float32(1)\n")
    assert [name for _, name in numpy_uses(sample)] == ["exp", "float32"]
