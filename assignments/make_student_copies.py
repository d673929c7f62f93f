"""Write the student copies of the assignment notebooks.

The solution notebooks (``*_solution.ipynb``) hold the reference code between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's convention). This script replaces
each such region by a ``TODO`` stub that raises NotImplementedError, clears outputs, and writes
``student/<name>.ipynb``. The tests execute the solution notebooks, so they never rot.

    python assignments/make_student_copies.py            # writes assignments/student/
"""
from __future__ import annotations

import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*$",
                    re.MULTILINE | re.DOTALL)


def stub(match):
    indent = match.group(1)
    return (f"{indent}# TODO: your code here (see the instructions above)\n"
            f"{indent}raise NotImplementedError(\"replace this line with your solution\")")


def strip_solutions(source: str) -> str:
    if source.count("### BEGIN SOLUTION") != source.count("### END SOLUTION"):
        raise ValueError("unbalanced ### BEGIN/END SOLUTION markers")
    return REGION.sub(stub, source)


def make_student_copy(solution_path: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
    nb = json.loads(solution_path.read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code":
            cell["source"] = strip_solutions(src)
            cell["outputs"], cell["execution_count"] = [], None
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / solution_path.name.replace("_solution", "")
    out.write_text(json.dumps(nb, indent=1) + "\n")
    return out


def main(argv=None):
    out_dir = HERE / "student"
    for path in sorted(HERE.glob("*_solution.ipynb")):
        print("wrote", make_student_copy(path, out_dir).relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
