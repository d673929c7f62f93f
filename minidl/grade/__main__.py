"""python -m minidl.grade: grade notebooks from the command line.

    python -m minidl.grade work/02_convolution.ipynb              a score table; JSON in grade-report/
    python -m minidl.grade work/02_convolution.ipynb --parts im2col,conv2d
    python -m minidl.grade NB.ipynb --json /autograder/results/results.json     (Gradescope)
    python -m minidl.grade submissions/                           a TA's folder: every *.ipynb in it
                                                                  (submissions/<student>/<nb>.ipynb or
                                                                  submissions/<student>.ipynb), one row
                                                                  per student, grade-report/grades.csv

Exit code: 0 when every graded part passed, 1 when a part failed, 2 for unusable input.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from .notebook import grade_notebook
from .report import class_table, score_table, write_class_csv, write_json


def _student_of(nb_path: pathlib.Path, folder: pathlib.Path) -> str:
    rel = nb_path.relative_to(folder)
    return rel.parts[0] if len(rel.parts) > 1 else nb_path.stem


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.grade", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="notebooks, or folders of submissions")
    parser.add_argument("--parts", help="comma-separated part names: grade only these (and what they build on)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    parser.add_argument("--out", default="grade-report", help="folder for the JSON reports (default grade-report)")
    parser.add_argument("--json", help="write the Gradescope JSON of the single notebook graded here to this file")
    parser.add_argument("--templates", help="folder of the original student copies (default assignments/student)")
    args = parser.parse_args(argv)
    parts = args.parts.split(",") if args.parts else None

    jobs = []                                   # (student or None, notebook path, folder)
    for p in map(pathlib.Path, args.paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            if not found:
                print(f"{p}: no notebooks in this folder", file=sys.stderr)
                return 2
            jobs += [(_student_of(q, p), q) for q in found]
        elif p.exists():
            jobs.append((None, p))
        else:
            print(f"{p}: no such file or folder", file=sys.stderr)
            return 2
    if args.json and len(jobs) != 1:
        print("--json needs exactly one notebook (use --out for several)", file=sys.stderr)
        return 2

    rows, all_passed, out = [], True, pathlib.Path(args.out)
    for student, path in jobs:
        try:
            result = grade_notebook(path, templates=args.templates, timeout=args.timeout, parts=parts)
        except (ValueError, FileNotFoundError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            all_passed = False
            continue
        print(score_table(result), end="\n\n")
        target = args.json or (out / (f"{student}/" if student else "") / f"{path.stem}.json")
        write_json(result, target)
        rows.append((student or path.stem, result))
        all_passed &= result.passed
    if any(student for student, _ in jobs):
        print(class_table(rows))
        write_class_csv(rows, out / "grades.csv")
        print(f"\nwrote {out / 'grades.csv'} and one JSON report per notebook under {out}/")
    elif not args.json:
        print(f"wrote the JSON report(s) under {out}/")
    return 0 if all_passed and rows else 1


if __name__ == "__main__":
    sys.exit(main())
