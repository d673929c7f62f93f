"""The grader (minidl.grade) and the assignment workflow around it.

- every solution notebook executes and scores full marks; every pristine student copy scores 0 with
  NotImplementedError messages that name the function;
- mutated solutions (a sign flip, a wrong stride, a call of the library inside the answer, an
  unstable formula, an off-by-one in a C++ body, ...) fail exactly the parts they should;
- an edited check cell cannot pass a part; a lost cell id, a missing answer cell, an endless loop;
- the frozen references still match the library; the student copies are current and nothing
  overwrites a student's work; the static check and the hints of ``check_cases``.
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the [dev] extra")
pytest.importorskip("nbclient", reason="nbclient is in the [dev] extra")

from minidl.grade import frozen                                          # noqa: E402
from minidl.grade.forbidden import find_forbidden                        # noqa: E402
from minidl.grade.frozen import check_cases, load_cases, save_cases       # noqa: E402
from minidl.grade.notebook import grade_notebook                          # noqa: E402
from minidl.gradcheck import rel_error                                    # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
sys.path.insert(0, str(ASSIGNMENTS))
import course                 # noqa: E402
import make_references        # noqa: E402
import make_student_copies    # noqa: E402

SOLUTIONS = sorted(ASSIGNMENTS.glob("*_solution.ipynb"))
STUDENT = sorted((ASSIGNMENTS / "student").glob("*.ipynb"))
HAS_GXX = shutil.which("g++") is not None


def failing(result):
    return {p.name for p in result.parts if not p.passed}


# ---- full marks and zero --------------------------------------------------------------------------

@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook_scores_full_marks(path):
    result = grade_notebook(path)
    assert failing(result) == set(), "\n".join(f"{p.name}: {p.message}" for p in result.parts if not p.passed)
    assert result.score == result.max_score > 0
    assert result.seconds < 300, "a solution notebook must run in under 5 minutes"
    assert all("OK" in p.output for p in result.parts), "every part's checks print their OK lines"


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_pristine_student_copy_scores_zero_naming_each_function(path):
    result = grade_notebook(path)
    assert result.score == 0 and len(result.parts) >= 3
    nb = nbformat.read(str(path), as_version=4)
    for p in result.parts:
        assert "NotImplementedError" in p.message, p.message
        stubs = [c.source for c in nb.cells if c.get("metadata", {}).get("minidl", {}).get("part") == p.name
                 and c.metadata["minidl"]["role"] == "answer"]
        named = [m for s in stubs for m in re.findall(r'(?:NotImplementedError|MINIDL_TODO)\("([\w.]+)', s)]
        assert any(name.split(".")[0] in p.message or name in p.message for name in named), (p.message, named)


# ---- mutations fail exactly the right parts ----------------------------------------------------------

def mutated(tmp_path, assignment, part, old, new, cell_role="answer"):
    """The solution notebook with one edit in a cell of ``part``, saved as the student would."""
    nb = nbformat.read(str(ASSIGNMENTS / f"{assignment}_solution.ipynb"), as_version=4)
    cells = [c for c in nb.cells if c.get("metadata", {}).get("minidl") == {"part": part, "role": cell_role}]
    assert sum(old in c.source for c in cells) == 1, f"the mutation's text is not in part {part}"
    for c in cells:
        c.source = c.source.replace(old, new)
    path = tmp_path / f"{assignment}.ipynb"
    nbformat.write(nb, str(path))
    return path


MUTATIONS = {
    "sign flip in MySigmoid.backward": (
        "01_autograd", "sigmoid", "return grad_out * out * (1 - out)", "return -grad_out * out * (1 - out)",
        {"sigmoid", "train"}, "gradient is wrong"),
    "unstable sigmoid (overflows at -1000)": (
        "01_autograd", "sigmoid",
        "e = xp.exp(-xp.abs(x))\n        out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))",
        "out = 1 / (1 + xp.exp(-x))", {"sigmoid"}, "not numerically stable"),
    "cross-entropy without the max shift": (
        "01_autograd", "cross_entropy", "shifted = s - s.max(axis=1, keepdims=True).detach()", "shifted = s",
        {"cross_entropy"}, "floating-point error"),
    "F.cross_entropy inside my_cross_entropy": (
        "01_autograd", "cross_entropy",
        "    shifted = s - s.max(axis=1, keepdims=True).detach()",
        "    return F.cross_entropy(s, y)\n    shifted = s - s.max(axis=1, keepdims=True).detach()",
        {"cross_entropy"}, "calls minidl's own cross_entropy in my_cross_entropy"),
    "wrong stride in im2col": (
        "02_convolution", "im2col", "i:i + stride * out_h:stride, j:j + stride * out_w:stride",
        "i:i + out_h, j:j + out_w", {"im2col", "conv2d"}, "my_im2col k=3 stride=2"),
    "conv output not transposed back": (
        "02_convolution", "conv2d", "return out.reshape(Fo, N, out_h, out_w).transpose(1, 0, 2, 3)",
        "return out.reshape(Fo, N, out_h, out_w)", {"conv2d"}, "transposed"),
    "F.conv2d inside my_conv2d": (
        "02_convolution", "conv2d", "out = w.reshape(Fo, -1) @ my_im2col(x, k, stride, pad) + b[:, None]",
        "return F.conv2d(tensor(x), tensor(w), tensor(b), stride=stride, padding=pad).numpy()",
        {"conv2d"}, "calls minidl's own conv2d"),
    "missing return in my_box_iou": (
        "03_detection", "iou", "return inter / (area_a[:, None] + area_b[None, :] - inter)",
        "inter / (area_a[:, None] + area_b[None, :] - inter)", {"iou", "nms"}, "forget `return`"),
    "ops.nms inside my_nms": (
        "03_detection", "nms", "    order = np.argsort(-scores, kind=\"stable\")",
        "    from minidl import ops\n    return ops.nms(boxes, scores, iou_threshold)\n"
        "    order = np.argsort(-scores, kind=\"stable\")", {"nms"}, "calls minidl's own nms in my_nms"),
    "off-by-one RoI width": (
        "03_detection", "roi_pool", "roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)",
        "roi_w = max(y2 - y1 + 1, 1), max(x2 - x1, 1)", {"roi_pool"}, "off-by-one"),
    "vis.saliency_map inside my_saliency_map": (
        "04_visualization", "saliency", "return np.abs(my_input_gradient(model, images, targets)).max(axis=1)",
        "return vis.saliency_map(model, images, targets)", {"saliency"}, "calls minidl's own saliency_map"),
    "Gram matrix without the normalization": (
        "04_visualization", "texture", "return flat @ flat.permute(0, 2, 1) / (c * h * w)",
        "return flat @ flat.permute(0, 2, 1)", {"texture"}, "constant factor"),
}


GRADED = {name: None if spec[0] != "03_detection" else ["iou", "nms", "roi_pool"] for name, spec in MUTATIONS.items()}
for _stem in course.MODULES:            # notebooks 5–9 keep their mutations beside their cells
    for _name, (_part, _old, _new, _expected, _message, _graded) in course.load(_stem).MUTATIONS.items():
        MUTATIONS[f"{_stem}: {_name}"] = (_stem, _part, _old, _new, _expected, _message)
        GRADED[f"{_stem}: {_name}"] = _graded


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_mutated_solution_fails_exactly_the_right_parts(name, tmp_path):
    assignment, part, old, new, expected, message = MUTATIONS[name]
    path = mutated(tmp_path, assignment, part, old, new)
    result = grade_notebook(path, parts=GRADED[name])
    assert failing(result) == expected, {p.name: p.message for p in result.parts}
    assert message in next(p for p in result.parts if p.name == part).message


@pytest.mark.skipif(not HAS_GXX, reason="the C++ part needs g++")
def test_off_by_one_in_the_cpp_body_fails_only_the_kernel_part(tmp_path):
    path = mutated(tmp_path, "03_detection", "roi_pool_kernel",
                   "minidl::ceil_of(static_cast<T>(ph + 1) * g.bin_h)",
                   "minidl::floor_of(static_cast<T>(ph + 1) * g.bin_h)")
    result = grade_notebook(path)
    assert failing(result) == {"roi_pool_kernel"}
    assert "end is exclusive" in result.parts[-1].message


def test_editing_a_check_cell_into_ok_does_not_pass(tmp_path):
    path = mutated(tmp_path, "02_convolution", "im2col", "for k, stride, pad in", "print('OK')\nfor k, stride, pad in []:\n  for k, stride, pad in",
                   cell_role="check")
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:                       # and the answer is the stub
        if cell.get("metadata", {}).get("minidl") == {"part": "im2col", "role": "answer"}:
            cell.source = make_student_copies.strip_solutions(cell.source)
    nbformat.write(nb, str(path))
    result = grade_notebook(path, parts=["im2col"])
    assert failing(result) == {"im2col"} and "NotImplementedError: my_im2col" in result.parts[0].message


def test_answer_cells_are_found_without_ids_and_a_missing_one_is_named(tmp_path):
    nb = nbformat.read(str(ASSIGNMENTS / "02_convolution_solution.ipynb"), as_version=4)
    for i, cell in enumerate(nb.cells):
        cell.id = f"other-{i}"                   # a notebook that lost the original ids
    nb.cells = [c for c in nb.cells if c.get("metadata", {}).get("minidl", {}).get("part") != "matrix"]
    path = tmp_path / "02_convolution.ipynb"
    nbformat.write(nb, str(path))
    result = grade_notebook(path)
    assert failing(result) == {"matrix"}
    assert "no answer cell starting with" in result.parts[-1].message


def test_an_endless_loop_fails_its_part_within_the_time_limit(tmp_path):
    path = mutated(tmp_path, "01_autograd", "train", "    scores = fc2(", "    while True:\n        pass\n    scores = fc2(")
    result = grade_notebook(path, timeout=15)
    assert failing(result) == {"train"} and "time limit" in result.parts[-1].message
    assert result.seconds < 60


# ---- the command line: one notebook, a TA's folder --------------------------------------------------

def test_cli_grades_a_folder_of_students_and_writes_gradescope_json(tmp_path):
    for student, source in (("ada", ASSIGNMENTS / "02_convolution_solution.ipynb"),
                            ("bob", ASSIGNMENTS / "student" / "02_convolution.ipynb")):
        (tmp_path / "subs" / student).mkdir(parents=True)
        shutil.copy(source, tmp_path / "subs" / student / "02_convolution.ipynb")
    run = subprocess.run([sys.executable, "-m", "minidl.grade", "subs", "--out", "report"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr           # bob's parts fail
    rows = (tmp_path / "report" / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,assignment,score,max_score,02_convolution:im2col")
    assert rows[1].startswith("ada,02_convolution,8,8") and rows[2].startswith("bob,02_convolution,0,8")
    report = json.loads((tmp_path / "report" / "ada" / "02_convolution.json").read_text())
    assert report["score"] == report["max_score"] == 8
    assert {t["name"] for t in report["tests"]} >= {"Part 1 — im2col with loops"}
    assert all(set(t) == {"name", "score", "max_score", "output"} for t in report["tests"])

    single = subprocess.run([sys.executable, "-m", "minidl.grade", "subs/ada/02_convolution.ipynb",
                             "--json", "results.json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0 and "8/8" in single.stdout
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 8


def test_cli_refuses_unusable_input(tmp_path):
    (tmp_path / "notes.ipynb").write_text("not json")
    for args, text in ((["missing.ipynb"], "no such file"), (["notes.ipynb"], "not a readable Jupyter notebook")):
        run = subprocess.run([sys.executable, "-m", "minidl.grade", *args], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode != 0 and text in run.stderr


# ---- frozen references --------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", list(make_references.BUILDERS))
def test_frozen_references_still_match_the_library(assignment):
    fresh = make_references.BUILDERS[assignment]()
    committed = load_cases(frozen.REFERENCES / f"{assignment}.npz")
    assert set(committed) == set(fresh), "python assignments/make_references.py"
    for name, trials in fresh.items():
        assert len(committed[name]) == len(trials)
        for case, (args, expected) in zip(committed[name], trials):
            for a, b in zip(case.args, args):   # arguments drawn through BLAS differ by ulps between processors
                a, b = np.asarray(a), np.asarray(b)
                if a.dtype.kind == "f":
                    assert a.shape == b.shape and rel_error(a.astype(float), b.astype(float)) <= 1e-5, name
                else:
                    np.testing.assert_array_equal(a, b, err_msg=name)
            # a display-only image stored as float16 may round to the neighbouring float16 value
            half = np.asarray(case.expected).dtype == np.float16
            np.testing.assert_allclose(case.expected, expected, rtol=2e-3 if half else 1e-4, atol=1e-6, err_msg=name)


def test_well_conditioned_trials_drop_answers_that_rounding_can_move():
    from course.spec import well_conditioned_trials

    def chaotic(x):             # the fractional part of 1e7 * x: a 1e-6 relative wiggle changes it completely
        return np.array([(1e7 * x[0]) % 1.0])

    def draw(rng):
        return (rng.random(1) + 0.5,)

    smooth = well_conditioned_trials(lambda x: 3 * x, draw, count=2, tol=1e-3)
    assert [a[0].tolist() for a, _ in smooth] == [draw(np.random.default_rng(s))[0].tolist() for s in (0, 1)]
    assert all(np.array_equal(e, 3 * a[0]) for a, e in smooth)
    with pytest.raises(RuntimeError, match="only 0 of 2 trials are stable"):
        well_conditioned_trials(chaotic, draw, count=2, tol=1e-3, seeds=range(5))


def test_save_cases_round_trips_and_never_destroys_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "refs.npz"
    save_cases(path, {"f": [((np.arange(3.0), 2, 0.5), np.ones(2))]})
    (case,) = load_cases(path)["f"]
    assert isinstance(case.args[1], int) and case.args[2] == 0.5 and case.expected.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="not numeric data"):      # would need pickle to load
        save_cases(path, {"f": [((object(),), np.ones(2))]})

    def disk_full(f, **arrays):
        f.write(b"PK half a file")
        raise OSError("No space left on device")
    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError):
        save_cases(path, {"f": [((np.zeros(1), 7), np.zeros(1))]})
    assert load_cases(path)["f"][0].args[1] == 2 and [p.name for p in tmp_path.iterdir()] == ["refs.npz"]


def test_check_cases_hints(capsys):
    cases = [frozen.Case((np.arange(6.0).reshape(2, 3),), np.arange(6.0).reshape(2, 3) * 2)]
    assert check_cases("double", lambda x: 2 * x, cases) == 0 and "— OK" in capsys.readouterr().out
    for fn, hint in ((lambda x: None, "forget `return`"), (lambda x: (2 * x).T, "transposed"),
                     (lambda x: -2 * x, "sign is flipped"), (lambda x: 6 * x, "times 3"),
                     (lambda x: 2 * x + np.where(x == 1, np.inf, 0), "NaN or inf")):
        with pytest.raises(AssertionError, match=hint):
            check_cases("double", fn, cases)
    with pytest.raises(AssertionError, match="not numerically stable"):
        check_cases("naive", lambda x: 1 / (1 + np.exp(-x)), [frozen.Case((np.array([-1000.0]),), np.zeros(1))],
                    strict=True)
    with pytest.raises(AssertionError, match=r"index \(1,\): yours 5, expected 2"):
        check_cases("keep", lambda x: np.array([0, 5]), [frozen.Case((None,), np.array([0, 2]))])


# ---- the static check ----------------------------------------------------------------------------------

def test_forbidden_names_are_found_however_they_are_written():
    forbid = ["conv2d", "im2col"]
    assert find_forbidden("def my_conv2d(x):\n    return my_im2col(x)\n", forbid) == []
    for source in ("y = F.conv2d(x, w)", "from minidl.functional import conv2d as c\ny = c(x)",
                   "import minidl.kernels.im2col as m", "f = getattr(F, 'conv2d')",
                   "%matplotlib inline\ndef my_conv2d(x):\n    return minidl.functional.conv2d(x)"):
        assert find_forbidden(source, forbid), source
    # the answer's own names and plain text are not minidl's: a variable, a parameter, a label
    assert find_forbidden("conv2d = x @ w\nprint('conv2d', conv2d)\ndef f(im2col=1):\n    return im2col\n",
                          forbid) == []
    assert find_forbidden("class Net:\n    def im2col(self, x):\n        return x\n    def f(self, x):\n"
                          "        self.conv2d = 1\n        return self.im2col(x) + self.conv2d\n", forbid) == []
    assert [h.name for h in find_forbidden("def conv2d(x):\n    return x\ny = F.conv2d(x)\n", forbid)] == ["conv2d"]
    assert [h.name for h in find_forbidden("import importlib\nm = importlib.import_module('minidl.kernels.im2col')",
                                           forbid)] == ["im2col"]
    (hit,) = find_forbidden("def outer():\n    def inner():\n        return F.conv2d(1)\n", forbid)
    assert (hit.name, hit.line, hit.where) == ("conv2d", 3, "inner")
    cpp = "%%writefile a.h\n// minidl::roi_pool_cell is the answer\nauto v = minidl::roi_pool_cell<T>(p);\n"
    (hit,) = find_forbidden(cpp, ["minidl::roi_pool_cell"])
    assert hit.line == 3


def test_solution_answers_pass_their_own_static_check():
    for path in SOLUTIONS:
        nb = nbformat.read(str(path), as_version=4)
        forbid = {p["name"]: p["forbid"] for p in nb.metadata["minidl"]["parts"]}
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("minidl", {})
            if meta.get("role") == "answer":
                assert find_forbidden(cell.source, forbid[meta["part"]]) == [], (path.name, meta)


# ---- student copies: current, stubbed, and never overwriting work ------------------------------------

def test_committed_student_copies_are_current_without_writing_anything():
    before = {p: p.read_bytes() for p in STUDENT}
    assert make_student_copies.stale_copies(ASSIGNMENTS / "student") == [], \
        "python assignments/make_student_copies.py"
    assert {p: p.read_bytes() for p in STUDENT} == before
    for path in STUDENT:
        source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        assert "### BEGIN SOLUTION" not in source and "NotImplementedError" in source


def test_make_student_copies_never_overwrites_work(tmp_path):
    solution = ASSIGNMENTS / "01_autograd_solution.ipynb"
    log = []
    assert make_student_copies.write_copies(tmp_path, solutions=[solution], log=log.append) == 0
    copy = tmp_path / "01_autograd.ipynb"
    nb = json.loads(copy.read_text())
    nb["cells"][3]["source"] = nb["cells"][3]["source"].replace("raise NotImplementedError", "pass  # mine\n#")
    copy.write_text(json.dumps(nb))
    assert make_student_copies.holds_work(copy)
    assert make_student_copies.write_copies(tmp_path, solutions=[solution], log=log.append) == 1
    assert "# mine" in copy.read_text() and "kept" in log[-1]
    make_student_copies.write_copies(tmp_path, force=True, solutions=[solution], log=log.append)
    backups = list(tmp_path.glob("01_autograd.ipynb.bak-*"))
    assert len(backups) == 1 and "# mine" in backups[0].read_text() and "# mine" not in copy.read_text()


def test_stubs_name_their_function_and_keep_indentation():
    src = ("class A:\n    def f(self, x):\n        ### BEGIN SOLUTION\n        return x\n        ### END SOLUTION\n")
    out = make_student_copies.strip_solutions(src)
    assert "return x" not in out and '        raise NotImplementedError("A.f: ' in out
    cpp = ("template <typename T>\nMINIDL_HD void body(const T* p,\n                    T* out) {\n"
           "    // ### BEGIN SOLUTION\n    *out = p[0];\n    // ### END SOLUTION\n}\n")
    out = make_student_copies.strip_solutions(cpp)
    assert '    MINIDL_TODO("body");' in out and "*out = p[0]" not in out
    with pytest.raises(ValueError, match="unbalanced"):
        make_student_copies.strip_solutions("### BEGIN SOLUTION\n")
