"""The assignment parts, read from the templates' grading metadata (shared by conftest and the tests)."""
import json
import pathlib

TEMPLATES = pathlib.Path(__file__).resolve().parent.parent / "assignments" / "student"


def all_parts():
    """[(assignment number, template path, part spec)] in course order."""
    out = []
    for path in sorted(TEMPLATES.glob("*.ipynb")):
        spec = json.loads(path.read_text())["metadata"].get("minidl", {})
        out += [(spec["number"], path, part) for part in spec.get("parts", [])]
    return out
