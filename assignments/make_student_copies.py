"""Write the student copies of the assignment notebooks — without ever overwriting a student's work.

The solution notebooks (``*_solution.ipynb``) hold the reference code between ``### BEGIN SOLUTION``
and ``### END SOLUTION`` (nbgrader's convention; ``// ### BEGIN SOLUTION`` inside a C++
``%%writefile`` cell). A student copy replaces each region by a stub that fails, naming the function
it belongs to, and clears the outputs.

    python assignments/make_student_copies.py --into work     # a student: your copies, in work/
    python assignments/make_student_copies.py                 # a TA: refresh assignments/student/
    python assignments/make_student_copies.py --check         # a TA / CI: are those current? (writes nothing)

No lost work: each copy records a fingerprint of its answer cells as generated. An existing file is
replaced only when its answer cells still match that fingerprint (nobody has written in them);
otherwise it is kept and the script says so. ``--force`` replaces it anyway, after saving the old
file as ``<name>.ipynb.bak-<date>``.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import pathlib
import re
import shutil
import sys

HERE = pathlib.Path(__file__).resolve().parent
REGION = re.compile(r"^([ \t]*)(//[ \t]*)?### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*(?://[ \t]*)?### END SOLUTION[^\n]*$",
                    re.MULTILINE | re.DOTALL)
PY_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+(\w+)")
CPP_FUNCTION = re.compile(r"(\w+)[ \t]*\(")


def enclosing_name(source: str, start: int, indent: str, fallback: str, cpp: bool = False) -> str:
    """The function the region at ``start`` belongs to: ``MySigmoid.forward``, ``my_im2col``, or the
    C++ function whose signature precedes it; ``fallback`` at the top level of a cell."""
    lines = source[:start].splitlines()
    names, level = [], len(indent)
    for line in reversed(lines):
        m = PY_DEF.match(line)
        if m and len(m.group(1)) < level:
            names.insert(0, m.group(3))
            level = len(m.group(1))
    if names or not cpp:
        return ".".join(names) or fallback
    for line in reversed(lines):          # C++: the last "name(" before the body, outside comments
        code = line.split("//", 1)[0]
        found = [n for n in CPP_FUNCTION.findall(code) if n not in ("if", "for", "while", "switch", "return")]
        if found and len(line) - len(line.lstrip()) < level:
            return found[0] if not code.strip().startswith(("#", "template")) else fallback
    return fallback


def strip_solutions(source: str, fallback: str = "this cell") -> str:
    """Replace every solution region of one cell's source by a stub that names its function."""
    if source.count("### BEGIN SOLUTION") != source.count("### END SOLUTION"):
        raise ValueError("unbalanced ### BEGIN/END SOLUTION markers")

    def stub(match):
        indent, cpp = match.group(1), match.group(2)
        name = enclosing_name(source, match.start(), indent, fallback, cpp=bool(cpp))
        if cpp:          # C++: a marker the build helper recognises before it compiles anything
            return (f"{indent}// TODO: your code here (see the instructions above)\n"
                    f"{indent}MINIDL_TODO(\"{name}\");")
        return (f"{indent}# TODO: your code here (see the instructions above)\n"
                f"{indent}raise NotImplementedError(\"{name}: replace these two lines with your code\")")
    return REGION.sub(stub, source)


def answer_fingerprint(cells) -> str:
    import hashlib
    h = hashlib.sha256()
    for cell in cells:
        if cell.get("metadata", {}).get("minidl", {}).get("role") == "answer":
            h.update(_source(cell).encode() + b"\0")
    return h.hexdigest()


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def make_student_copy(solution_path: pathlib.Path) -> tuple[str, dict]:
    """(file name, notebook dict) of the student copy of one solution notebook. Writes nothing."""
    nb = copy.deepcopy(json.loads(pathlib.Path(solution_path).read_text()))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            part = cell.get("metadata", {}).get("minidl", {}).get("part")
            cell["source"] = strip_solutions(_source(cell), f"part '{part}'" if part else "this cell")
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].setdefault("minidl", {})["answers_sha256"] = answer_fingerprint(nb["cells"])
    return pathlib.Path(solution_path).name.replace("_solution", ""), nb


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def holds_work(path: pathlib.Path) -> bool:
    """True when the notebook at ``path`` has answer cells that differ from how they were generated
    (or cannot be read as a notebook at all: then it is somebody's file, not ours to replace)."""
    try:
        nb = json.loads(path.read_text())
        recorded = nb["metadata"]["minidl"]["answers_sha256"]
    except (ValueError, KeyError, TypeError):
        return True
    return answer_fingerprint(nb["cells"]) != recorded


def write_copies(out_dir: pathlib.Path, force=False, solutions=None, log=print) -> int:
    """Write every student copy into ``out_dir``; returns how many files were kept (not written)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = 0
    for solution in solutions or sorted(HERE.glob("*_solution.ipynb")):
        name, nb = make_student_copy(solution)
        target = out_dir / name
        text = render(nb)
        if target.exists() and target.read_text() == text:
            log(f"unchanged {target}")
            continue
        if target.exists() and holds_work(target):
            if not force:
                log(f"kept      {target}: it holds your work (use --force to replace it; the old file "
                    "is then saved beside it)")
                kept += 1
                continue
            backup = target.with_name(target.name + datetime.datetime.now().strftime(".bak-%Y%m%d-%H%M%S"))
            shutil.copy2(target, backup)
            log(f"saved     {backup}")
        target.write_text(text)
        log(f"wrote     {target}")
    return kept


def stale_copies(out_dir: pathlib.Path) -> list[str]:
    """Names of committed copies in ``out_dir`` that differ from freshly generated ones (reads only)."""
    stale = []
    for solution in sorted(HERE.glob("*_solution.ipynb")):
        name, nb = make_student_copy(solution)
        target = out_dir / name
        if not target.exists() or json.loads(target.read_text()) != nb:
            stale.append(name)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", default=str(HERE / "student"), help="folder to write the copies into")
    parser.add_argument("--force", action="store_true", help="replace copies that hold work (after a backup)")
    parser.add_argument("--check", action="store_true", help="only report whether assignments/student/ is current")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_copies(HERE / "student")
        for name in stale:
            print(f"stale: assignments/student/{name} (python assignments/make_student_copies.py)")
        return 1 if stale else 0
    write_copies(pathlib.Path(args.into), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
