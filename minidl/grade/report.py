"""What the grader prints and writes: a score table per notebook, a row per student, Gradescope JSON.

Gradescope's autograder reads ``results.json``:
    {"score": 7.0, "max_score": 10.0, "execution_time": 41.2,
     "tests": [{"name": "Part 1 — im2col with loops", "score": 3, "max_score": 3, "output": "..."}]}
"""
from __future__ import annotations

import csv
import json
import os
import pathlib
import tempfile
import textwrap


def _points(x):
    return f"{x:g}"


def score_table(result) -> str:
    """A plain-text table: part, points, passed, message (wrapped)."""
    rows = [(p.title, f"{_points(p.score)}/{_points(p.points)}", "yes" if p.passed else "NO", p.message)
            for p in result.parts]
    width = max([len("part")] + [len(r[0]) for r in rows])
    lines = [f"{result.path}  ({result.assignment}, graded in {result.seconds:.0f} s)",
             f"{'part':<{width}}  points  passed  message"]
    for title, pts, ok, message in rows:
        wrapped = textwrap.wrap(message, 100) or [""]
        lines.append(f"{title:<{width}}  {pts:>6}  {ok:<6}  {wrapped[0]}")
        lines += [" " * (width + 18) + more for more in wrapped[1:]]
    lines.append(f"{'total':<{width}}  {_points(result.score)}/{_points(result.max_score)}")
    return "\n".join(lines)


def gradescope(result) -> dict:
    return {"score": result.score, "max_score": result.max_score,
            "execution_time": round(result.seconds, 1),
            "tests": [{"name": p.title, "score": p.score, "max_score": p.points,
                       "output": (p.message + ("\n\n" + p.output if p.output else "")).strip()}
                      for p in result.parts]}


def write_atomic(path, text):
    """Write a file so that a crash mid-way leaves the old file, never half of the new one."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(result, path):
    write_atomic(path, json.dumps(gradescope(result), indent=1, ensure_ascii=False) + "\n")


def class_table(rows) -> str:
    """One row per student: [(student, NotebookResult), ...] of one or more assignments."""
    lines = [f"{'student':<24} {'notebook':<20} {'score':>9}  failed parts"]
    for student, result in rows:
        failed = ", ".join(p.name for p in result.parts if not p.passed) or "-"
        score = f"{_points(result.score)}/{_points(result.max_score)}"
        lines.append(f"{student:<24} {result.assignment:<20} {score:>9}  {failed}")
    return "\n".join(lines)


def write_class_csv(rows, path):
    """grades.csv: student, assignment, score, max_score, then one column per part."""
    names = []
    for _, result in rows:
        names += [f"{result.assignment}:{p.name}" for p in result.parts if f"{result.assignment}:{p.name}" not in names]
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "score", "max_score"] + names)
        for student, result in rows:
            by = {f"{result.assignment}:{p.name}": p.score for p in result.parts}
            writer.writerow([student, result.assignment, result.score, result.max_score] + [by.get(n, "") for n in names])
