"""Grading the assignment notebooks: run a student's notebook headless and score it part by part.

    python -m minidl.grade work/02_convolution.ipynb          # one notebook: a score table + JSON
    python -m minidl.grade submissions/                       # a TA's folder: one row per student

What is in here, one idea per file:
    notebook.py    find the original (template) of a student's notebook, put the student's answer
                   cells into it, execute it in a fresh kernel with a time limit, cell by cell
    forbidden.py   the static check: a part fails when its answer calls minidl's own implementation
                   of the technique the part teaches (an AST walk of the student's cells)
    frozen.py      expected results frozen as data (``references/*.npz``) and ``check_cases``,
                   which compares a student's function with them and explains typical mistakes
    report.py      the score table and the Gradescope JSON report
    kernel.py      the C++ assignment: build a student's per-element header into a pybind11 module
    __main__.py    the command line

The checks a student sees in the notebook are the same code the grader runs: the grader only makes
sure they are the *original* check cells (a student cannot edit them into passing) and counts.
"""
