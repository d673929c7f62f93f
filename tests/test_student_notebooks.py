"""Check one part of YOUR notebook: ``pytest -m assignment2_im2col`` (or a whole one: ``-m assignment2``).

Each test grades your copy of the notebook (``work/<assignment>.ipynb``; ``--notebooks DIR`` or
``$MINIDL_NOTEBOOKS`` for another folder) with ``minidl.grade``, running only the part asked for and
the parts it builds on, and fails with the grader's message. A plain ``pytest`` skips these (your
work is not the library's test suite); the grader's own tests are in test_grade.py.
"""
import os
import pathlib

import pytest

from student_parts import all_parts

pytest.importorskip("nbclient", reason="grading needs the [notebooks] or [dev] extra")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _param(number, template, part):
    marks = [pytest.mark.student_notebook, getattr(pytest.mark, f"assignment{number}"),
             getattr(pytest.mark, f"assignment{number}_{part['name']}")]
    return pytest.param(template.name, part["name"], marks=marks, id=f"{template.stem}-{part['name']}")


@pytest.mark.parametrize("notebook,part", [_param(*p) for p in all_parts()])
def test_part_of_your_notebook(notebook, part, request):
    from minidl.grade.notebook import grade_notebook
    folder = pathlib.Path(request.config.getoption("--notebooks") or os.environ.get("MINIDL_NOTEBOOKS")
                          or ROOT / "work")
    path = folder / notebook
    if not path.exists():
        pytest.fail(f"no {path}: make your copies with `python assignments/make_student_copies.py --into work` "
                    "(or point --notebooks at your folder)", pytrace=False)
    result = grade_notebook(path, parts=[part])
    mine = next(p for p in result.parts if p.name == part)
    if mine.output:
        print(mine.output)
    if not mine.passed:
        pytest.fail(f"{mine.title}: {mine.message}", pytrace=False)
