"""Grade one student notebook: take the answers from it, everything else from the original, run, score.

The original of each assignment (the *template*) is the committed student copy,
``assignments/student/<assignment>.ipynb``. Its metadata says what is graded:

    notebook.metadata["minidl"] = {"assignment": "02_convolution", "number": 2,
                                   "parts": [{"name": "im2col", "title": ..., "points": 3,
                                              "forbid": ["im2col", ...], "requires": []}, ...]}
    cell.metadata["minidl"]     = {"part": "im2col", "role": "answer" | "check"}   (others: setup)

Grading a notebook:
  1. find its template (by the assignment recorded in its metadata, else by its file name);
  2. build the notebook to run: the template's cells, with each *answer* cell replaced by the
     student's cell of the same id (Jupyter keeps cell ids across edits). Check and setup cells
     always come from the template — editing a check cell into printing "OK" changes nothing;
  3. statically check each answer for calls of minidl's own implementation (``forbidden.py``);
  4. run it in a fresh kernel, in a temporary folder, cell by cell, under one time limit for the
     whole notebook; an error in one cell does not stop the others (later parts still get graded);
  5. a part scores its points when its answer and check cells ran without an error and the static
     check found nothing; otherwise 0, with the first error as the message.
"""
from __future__ import annotations

import copy
import os
import pathlib
import tempfile
import time
from dataclasses import dataclass, field

from .forbidden import describe, find_forbidden

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "assignments" / "student"


# ---- what the grader reports ---------------------------------------------------------------------

@dataclass
class PartResult:
    name: str            # "im2col"
    title: str           # "Part 1 — im2col with loops"
    points: float        # the most it can score
    score: float         # points or 0
    message: str         # "OK", or why it failed
    output: str = ""     # what the part's check cells printed

    @property
    def passed(self) -> bool:
        return self.score == self.points


@dataclass
class NotebookResult:
    path: str
    assignment: str
    parts: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self):
        return sum(p.score for p in self.parts)

    @property
    def max_score(self):
        return sum(p.points for p in self.parts)

    @property
    def passed(self):
        return all(p.passed for p in self.parts)


@dataclass
class CellOutcome:
    status: str = "not run"   # "ok", "error", "timeout", "not run"
    error: str = ""           # "NameError: name 'x' is not defined"
    text: str = ""            # its stdout/stderr


# ---- reading notebooks -------------------------------------------------------------------------------

def _nbformat():
    try:
        import nbformat
    except ImportError as e:      # pragma: no cover - the [notebooks]/[dev] extras bring it
        raise ImportError("grading needs nbformat and nbclient: pip install -e \".[notebooks]\"") from e
    return nbformat


def read_notebook(path):
    nbformat = _nbformat()
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as e:       # not JSON, not a notebook: say so instead of a traceback
        raise ValueError(f"{path}: not a readable Jupyter notebook ({type(e).__name__}: {e})") from None


def spec_of(nb) -> dict:
    """The grading spec stored in a template's metadata."""
    spec = nb.metadata.get("minidl")
    if not spec or "parts" not in spec:
        raise ValueError("this notebook has no grading metadata (metadata.minidl.parts)")
    return spec


def cell_part(cell):
    meta = cell.get("metadata", {}).get("minidl", {})
    return meta.get("part"), meta.get("role")


def find_template(student_nb, path, templates=None):
    """The template of a student's notebook: its recorded assignment, else the file name."""
    templates = pathlib.Path(templates) if templates else TEMPLATES
    if not templates.is_dir():
        raise FileNotFoundError(f"no templates folder {templates}: the grader needs the repository's "
                                "assignments/student/ (pip install -e . from a clone), or --templates DIR")
    assignment = (student_nb.metadata.get("minidl") or {}).get("assignment")
    candidates = [templates / f"{assignment}.ipynb"] if assignment else []
    stem = pathlib.Path(path).stem
    candidates += [t for t in sorted(templates.glob("*.ipynb")) if stem.startswith(t.stem) or t.stem.startswith(stem)]
    candidates += [t for t in sorted(templates.glob("*.ipynb")) if stem[:2].isdigit() and t.stem[:2] == stem[:2]]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    names = ", ".join(t.name for t in sorted(templates.glob("*.ipynb")))
    raise ValueError(f"{path}: cannot tell which assignment this is (no minidl metadata, and the file name "
                     f"matches none of {names})")


# ---- merging the student's answers into the template ---------------------------------------------

def _first_line(source):
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    return ""


def merge(template, student):
    """The notebook to run, and {cell index: problem} for answer cells missing from the student's.

    An answer cell is matched by its id, and, when the student's notebook lost the ids (copied
    cells, an old Jupyter), by its first line (``def my_im2col(...)`` or ``%%writefile x.h``).
    """
    merged = copy.deepcopy(template)
    by_id = {c.get("id"): c for c in student.cells if c.cell_type == "code"}
    by_first = {}
    for c in student.cells:
        if c.cell_type == "code":
            by_first.setdefault(_first_line(c.source), c)
    missing = {}
    for i, cell in enumerate(merged.cells):
        if cell.cell_type != "code" or cell_part(cell)[1] != "answer":
            continue
        theirs = by_id.get(cell.get("id")) or by_first.get(_first_line(cell.source))
        if theirs is None:
            missing[i] = (f"your notebook has no answer cell starting with `{_first_line(cell.source)}` "
                          f"(cell id {cell.get('id')}); copy that cell back from the original and put your "
                          "code into it")
        else:
            cell.source = theirs.source
        cell.outputs, cell.execution_count = [], None
    for cell in merged.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return merged, missing


# ---- running ----------------------------------------------------------------------------------------

def _error_of(outputs):
    for out in outputs:
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return ""


def _text_of(outputs):
    return "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")


def execute(nb, run, timeout, workdir, kernel_name="python3"):
    """Run the code cells whose index is in ``run``, in order, in one fresh kernel; the whole
    notebook gets ``timeout`` seconds. Returns {cell index: CellOutcome}."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    outcomes = {i: CellOutcome() for i in run}
    env = dict(os.environ, MPLBACKEND="Agg")         # no window ever opens while grading
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no banner noise
    deadline = time.monotonic() + timeout
    with client.setup_kernel(env=env, cwd=str(workdir)):
        for i in sorted(run):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcomes[i] = CellOutcome("timeout", f"not run: the notebook used up its {timeout:.0f} s")
                continue
            client.timeout = max(1, int(remaining))
            try:
                client.execute_cell(nb.cells[i], i)
            except CellTimeoutError:
                outcomes[i] = CellOutcome("timeout", f"the notebook ran past its time limit of {timeout:.0f} s "
                                          "in this cell (an endless loop? too many steps?)")
                deadline = time.monotonic()          # nothing else runs after a timeout
                continue
            except DeadKernelError as e:
                outcomes[i] = CellOutcome("error", f"the Python kernel died in this cell ({e}): a crash or "
                                          "out of memory")
                break
            error = _error_of(nb.cells[i].outputs)
            outcomes[i] = CellOutcome("error" if error else "ok", error, _text_of(nb.cells[i].outputs))
    return outcomes


# ---- scoring ----------------------------------------------------------------------------------------

def parts_to_run(spec, selected):
    """The selected parts and, recursively, the parts they build on (``requires``)."""
    by_name = {p["name"]: p for p in spec["parts"]}
    if selected is None:
        return set(by_name)
    unknown = [s for s in selected if s not in by_name]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; this notebook's parts: {list(by_name)}")
    todo, needed = list(selected), set()
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += by_name[name].get("requires", [])
    return needed


def grade_notebook(path, *, templates=None, timeout=600, parts=None, kernel_name="python3"):
    """Grade the notebook at ``path``; ``parts`` (names) limits the run to those parts and the parts
    they build on. Returns a NotebookResult."""
    start = time.monotonic()
    path = pathlib.Path(path)
    student = read_notebook(path)
    template_path = find_template(student, path, templates)
    template = read_notebook(template_path)
    spec = spec_of(template)
    needed = parts_to_run(spec, parts)
    merged, missing = merge(template, student)

    run = [i for i, c in enumerate(merged.cells)
           if c.cell_type == "code" and (cell_part(c)[0] is None or cell_part(c)[0] in needed)]
    with tempfile.TemporaryDirectory(prefix="minidl-grade-") as workdir:
        outcomes = execute(merged, run, timeout, workdir, kernel_name)

    result = NotebookResult(str(path), spec["assignment"])
    failed = set()
    for part in spec["parts"]:
        if parts is not None and part["name"] not in parts:
            continue
        result.parts.append(_score_part(part, merged, outcomes, missing, failed))
        if not result.parts[-1].passed:
            failed.add(part["name"])
    result.seconds = time.monotonic() - start
    return result


def _score_part(part, nb, outcomes, missing, failed_before):
    name, title = part["name"], part.get("title", part["name"])
    cells = [i for i, c in enumerate(nb.cells) if cell_part(c)[0] == name]
    answers = [i for i in cells if cell_part(nb.cells[i])[1] == "answer"]
    output = "".join(outcomes[i].text for i in cells if i in outcomes)

    def fail(message):
        upstream = [r for r in part.get("requires", []) if r in failed_before]
        if upstream:
            message += f" (this part builds on part(s) {', '.join(upstream)}, which failed: fix those first)"
        return PartResult(name, title, part["points"], 0, message, output)

    for i in answers:
        if i in missing:
            return fail(missing[i])
    findings = [f for i in answers for f in find_forbidden(nb.cells[i].source, part.get("forbid", []))]
    # setup cells run before the part matter too: a failure there is reported as the cause
    for i in sorted(outcomes):
        if i > max(cells):
            break
        o = outcomes[i]
        if o.status in ("error", "timeout") and (i in cells or cell_part(nb.cells[i])[0] is None):
            where = ("your answer cell raised" if i in answers else
                     "the check raised" if i in cells else "a setup cell (given code, run before this part) raised")
            return fail(f"{where} {o.error}" if o.status == "error" else o.error)
    if findings:
        return fail(describe(findings, title))
    not_run = [i for i in cells if outcomes.get(i, CellOutcome()).status != "ok"]
    if not_run:
        return fail("its cells did not run")
    return PartResult(name, title, part["points"], part["points"], "OK", output)
