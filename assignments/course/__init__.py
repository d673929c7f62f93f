"""The notebooks of the course beyond the first four: one module per notebook (lectures 8, 10 and 12).

Each module holds everything about its notebook in one place, so a TA changing a part edits one file:

    STEM       "05_segmentation"  -> assignments/05_segmentation_solution.ipynb, student/05_segmentation.ipynb
    PARTS      the grading spec: [spec.part(name, title, points, forbid, requires), ...]
    CELLS      the cells in order: ("md", text) | ("code", text) | ("answer", part, text) | ("check", part, text)
    reference_cases()   {case name: [(args, expected), ...]}: the frozen expected results
                        (make_references.py writes them to minidl/grade/references/<STEM>.npz)
    MUTATIONS  {description: (part, old text, new text, failing parts, message, graded parts)}: edits of the
               solution that tests/test_grade.py grades and expects to fail exactly ``failing parts``
               (graded parts: the parts graded for that test, None for all — keep it small, grading runs
               the notebook)

``MODULES`` lists them in course order; ``load(stem)`` imports one (so a broken module does not stop
the others from building).
"""
from __future__ import annotations

import importlib

MODULES = {
    "05_segmentation": "segmentation",
    "06_localization_pose": "localization_pose",
    "07_detectors": "detectors",
    "08_understanding": "understanding",
    "09_texture_style": "texture_style",
    "10_captioning": "captioning",
}


def load(stem):
    """The module of the notebook ``stem`` (e.g. "05_segmentation")."""
    if stem not in MODULES:
        raise KeyError(f"unknown course notebook {stem!r}; known: {', '.join(MODULES)}")
    module = importlib.import_module(f"course.{MODULES[stem]}")
    if module.STEM != stem:
        raise ValueError(f"course/{MODULES[stem]}.py says STEM = {module.STEM!r}, expected {stem!r}")
    return module
