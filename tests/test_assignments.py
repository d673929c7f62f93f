"""Assignment notebooks: solutions execute headless, student copies are stubs and up to date.

Run one assignment's checks with ``pytest -m assignment1`` (markers registered in pyproject.toml).
"""
import json
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the [dev] extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the [dev] extra")

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
sys.path.insert(0, str(ASSIGNMENTS))
import make_student_copies  # noqa: E402

SOLUTIONS = sorted(ASSIGNMENTS.glob("*_solution.ipynb"))


def marker_for(path):
    number = int(path.name.split("_")[0])
    return getattr(pytest.mark, f"assignment{number}")


def execute(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


@pytest.mark.parametrize("path", [pytest.param(p, marks=marker_for(p)) for p in SOLUTIONS], ids=lambda p: p.name)
def test_solution_notebook_runs_and_its_checks_pass(path, tmp_path):
    nb = execute(path, tmp_path)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "WRONG" not in text
    assert text.count("OK") >= 2, "the check cells printed no results"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_student_copy_is_current_and_stubbed(path, tmp_path):
    fresh = make_student_copies.make_student_copy(path, tmp_path)
    committed = ASSIGNMENTS / "student" / fresh.name
    assert committed.exists(), "run python assignments/make_student_copies.py"
    assert json.loads(committed.read_text()) == json.loads(fresh.read_text()), \
        "student copy is stale: run python assignments/make_student_copies.py"
    source = "".join("".join(c["source"]) for c in json.loads(fresh.read_text())["cells"])
    assert "### BEGIN SOLUTION" not in source and "NotImplementedError" in source


def test_stub_replacement_keeps_indentation():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    out = make_student_copies.strip_solutions(src)
    assert "return x" not in out and "    raise NotImplementedError" in out
    with pytest.raises(ValueError, match="unbalanced"):
        make_student_copies.strip_solutions("### BEGIN SOLUTION\n")
