"""minidl.grade.kernel: building a student's C++ RoI-pool body and checking it.

The reference solution of the notebook cell must build (g++, and nvcc when installed) and pass
the check; typical mistakes, written into copies of it, must fail with the hint that names
them; the stub, a compile error and a header calling minidl's own body are refused clearly.
Each g++ build takes several seconds, so builds are shared through module-scoped fixtures.
"""
import importlib.util
import pathlib
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("pybind11", reason="building a student's kernel needs pybind11 (the [dev] extra)")
if shutil.which("g++") is None:
    pytest.skip("g++ is not installed", allow_module_level=True)

from minidl.grade import kernel  # noqa: E402
from minidl.grade.kernel import KernelBuildError, build_kernel, check_roi_pool_kernel  # noqa: E402
from minidl.kernels.roi_pool import roi_pool_reference  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
NVCC = kernel._find_nvcc("auto")


def load_cells():
    spec = importlib.util.spec_from_file_location("kernel_part_cells",
                                                  ROOT / "assignments" / "kernel_part_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.KERNEL_CELLS


def solution_header():
    """The answer cell's file: its text without the %%writefile line."""
    (answer,) = [cell for cell in load_cells() if cell[0] == "answer"]
    lines = answer[2].strip("\n").splitlines()
    assert lines[0] == "%%writefile roi_pool_cell.h"
    return "\n".join(lines[1:]) + "\n"


SOLUTION = solution_header()


def mutate(old, new):
    assert SOLUTION.count(old) == 1, old
    return SOLUTION.replace(old, new)


def build(tmp_path, monkeypatch, text, **kwargs):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "roi_pool_cell.h").write_text(text)
    return build_kernel("roi_pool_cell.h", **kwargs)


@pytest.fixture(scope="module")
def solution_module(tmp_path_factory):
    """The reference solution, built once (with nvcc too when it is installed)."""
    with pytest.MonkeyPatch.context() as mp:
        return build(tmp_path_factory.mktemp("solution"), mp, SOLUTION)


# ---- the reference solution -------------------------------------------------------------------

def test_cells_have_the_parts():
    kinds = [cell[0] for cell in load_cells()]
    assert kinds[0] == "md" and kinds.count("answer") == 1 and kinds.count("check") == 1
    (check,) = [cell for cell in load_cells() if cell[0] == "check"]
    assert 'build_kernel("roi_pool_cell.h")' in check[2] and "check_roi_pool_kernel" in check[2]
    assert SOLUTION.count("// ### BEGIN SOLUTION") == SOLUTION.count("// ### END SOLUTION") == 1


def test_solution_builds_and_passes(solution_module, capsys):
    error = check_roi_pool_kernel("roi_pool_cell (C++)", solution_module)
    out = capsys.readouterr().out
    assert "outputs and argmax identical to the NumPy reference — OK" in out
    assert "gradient check" in out and out.rstrip().endswith("OK")
    assert error < 1e-8


def test_solution_matches_reference_on_a_direct_call(solution_module):
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 11)).astype(np.float32)
    rois = np.array([[0, 1, 1, 7, 6], [1, -3, 2, 20, 9], [0, 5, 5, 3, 3], [2, 0, 0, 4, 4]], np.float32)
    output, argmax = solution_module.roi_pool_forward(x, rois, 3, 2, 0.5)
    expected = roi_pool_reference(x, rois, (3, 2), 0.5)
    assert output.dtype == np.float32 and argmax.dtype == np.int64 and output.shape == (4, 3, 3, 2)
    np.testing.assert_array_equal(output, expected[0])
    np.testing.assert_array_equal(argmax, expected[1])
    assert (argmax[3] == -1).all() and (output[3] == 0).all()   # batch index 2: not an image


def test_binding_rejects_bad_arguments(solution_module):
    x = np.zeros((1, 1, 5, 5), np.float32)
    rois = np.zeros((1, 5), np.float32)
    with pytest.raises(ValueError, match="input"):
        solution_module.roi_pool_forward(x[0], rois, 2, 2, 1.0)
    with pytest.raises(ValueError, match="rois"):
        solution_module.roi_pool_forward(x, rois[:, :4], 2, 2, 1.0)
    with pytest.raises(TypeError, match="rois"):
        solution_module.roi_pool_forward(x, rois.astype(np.float64), 2, 2, 1.0)
    with pytest.raises(TypeError, match="input"):
        solution_module.roi_pool_forward(x.astype(np.int32), rois, 2, 2, 1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        solution_module.roi_pool_forward(np.zeros((1, 1, 5, 10), np.float32)[..., ::2], rois, 2, 2, 1.0)
    with pytest.raises(ValueError, match="pooled"):
        solution_module.roi_pool_forward(x, rois, 0, 2, 1.0)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_nvcc_compiles_the_same_body(solution_module):
    assert solution_module.nvcc_compiled is True


# ---- typical mistakes: each fails with its hint ----------------------------------------------

MISTAKES = {
    # the end of the rows rounded down: the bin loses its last row
    "end_floor": (("minidl::ceil_of(static_cast<T>(ph + 1)", "minidl::floor_of(static_cast<T>(ph + 1)"),
                  kernel.HINT_END),
    # >= keeps the *last* of equal maxima: only the tied case can tell
    "ties": (("if (plane[h * width + w] > best)", "if (plane[h * width + w] >= best)"), kernel.HINT_TIES),
    # an empty bin left at -FLT_MAX
    "empty": (("T best = empty ? T(0) : static_cast<T>(-FLT_MAX);", "T best = static_cast<T>(-FLT_MAX);"),
              kernel.HINT_EMPTY),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistake_fails_with_its_hint(tmp_path, monkeypatch, mistake, capsys, solution_module):
    (old, new), hint = MISTAKES[mistake]
    module = build(tmp_path, monkeypatch, mutate(old, new), nvcc=False)
    # every build is a new module (an edited header is seen in the same Jupyter kernel)
    assert module.__name__ != solution_module.__name__ and module.nvcc_compiled is False
    assert "nvcc: skipped" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="first difference at RoI") as info:
        check_roi_pool_kernel("roi_pool_cell (C++)", module)
    assert "hint: " + hint in str(info.value)
    assert "— WRONG" in capsys.readouterr().out


class FakeModule:
    """A Python stand-in for a built module: the reference with a mistake applied (no compiler)."""

    def __init__(self, spoil):
        self.spoil = spoil

    def roi_pool_forward(self, x, rois, pooled_h, pooled_w, spatial_scale):
        output, argmax = roi_pool_reference(x, rois, (pooled_h, pooled_w), spatial_scale)
        return self.spoil(x, output, argmax)


def test_hint_for_a_maximum_starting_at_zero():
    def from_zero(x, output, argmax):
        negative = output < 0
        return np.where(negative, 0, output).astype(output.dtype), np.where(negative, -1, argmax)
    with pytest.raises(AssertionError, match="starts from -FLT_MAX, not 0"):
        check_roi_pool_kernel("fake", FakeModule(from_zero))


def test_hint_for_an_argmax_that_is_not_the_flat_index():
    def transposed(x, output, argmax):   # w * height + h instead of h * width + w
        height, width = x.shape[2:]
        return output, np.where(argmax >= 0, argmax % width * height + argmax // width, -1)
    with pytest.raises(AssertionError, match="flat index h\\*width \\+ w"):
        check_roi_pool_kernel("fake", FakeModule(transposed))


def test_wrong_gradient_is_reported():
    # Forward values right, argmax shifted: caught already by the exact comparison; the gradient
    # check alone (as a separate step) must also fail.
    def shifted(x, output, argmax):
        return output, np.where(argmax > 0, argmax - 1, argmax)
    with pytest.raises(AssertionError, match="routes through your argmax"):
        kernel._check_gradient("fake", FakeModule(shifted), seed=0)


# ---- refused before or by the compiler ---------------------------------------------------------

def stub_header():
    """The student copy: the solution region replaced by the two stub lines."""
    region = re.compile(r"^([ \t]*)// ### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*// ### END SOLUTION[^\n]*$",
                        re.MULTILINE | re.DOTALL)
    stub = ('\\1// TODO: your code here (see the instructions above)\n'
            '\\1MINIDL_TODO("roi_pool_cell");')
    text, count = region.subn(stub, SOLUTION)
    assert count == 1
    return text


def test_stub_raises_not_implemented(tmp_path, monkeypatch):
    with pytest.raises(NotImplementedError, match=r"roi_pool_cell \(C\+\+, roi_pool_cell.h\): replace the TODO"):
        build(tmp_path, monkeypatch, stub_header())


def test_stub_does_not_compile_either(tmp_path, monkeypatch):
    """Should the stub reach g++ anyway, the harness's MINIDL_TODO makes it an error naming it."""
    monkeypatch.setattr(kernel, "_check_header", lambda text, shown: None)
    with pytest.raises(KernelBuildError, match="roi_pool_cell: replace the TODO"):
        build(tmp_path, monkeypatch, stub_header(), nvcc=False)


def test_a_todo_in_a_comment_does_not_count():
    kernel._check_header(SOLUTION.replace("#pragma once", "#pragma once\n// was: MINIDL_TODO(...)"),
                         "roi_pool_cell.h")


def test_calling_minidls_own_body_is_refused(tmp_path, monkeypatch):
    start = SOLUTION.index("    // ### BEGIN SOLUTION")
    end = SOLUTION.index("    // ### END SOLUTION")
    cheat = (SOLUTION[:start] + "    minidl::roi_pool_cell(plane, width, "
             "minidl::roi_pool_window(g, ph, pw, height, width), out, argmax);\n" + SOLUTION[end:])
    with pytest.raises(AssertionError, match="uses minidl's own"):
        build(tmp_path, monkeypatch, cheat)


def test_syntax_error_shows_the_compiler_message(tmp_path, monkeypatch):
    broken = mutate("*argmax = best_index;", "*argmax = best_index")
    with pytest.raises(KernelBuildError) as info:
        build(tmp_path, monkeypatch, broken, nvcc=False)
    message = str(info.value)
    assert message.startswith("g++ could not compile roi_pool_cell.h")
    assert re.search(r"^roi_pool_cell\.h:\d+:\d+: error", message, re.MULTILINE)
    assert "minidl_kernel_" not in message           # the temporary folder is not shown
    assert len(message.splitlines()) <= kernel.ERROR_LINES + 2


def test_missing_header_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="%%writefile"):
        build_kernel("roi_pool_cell.h")
