"""``python -m minidl.tour`` — train small models headless and write an HTML report with figures.

Each chapter is a module with ``run(report, quick) -> dict of headline numbers``; CHAPTERS
lists them in order. ``--quick`` runs every chapter in seconds (used by the tests); the full
tour stays under ~15 minutes on 2 CPU cores.
"""
CHAPTERS = [
    ("mlp", "minidl.tour.mlp"),
    ("segmentation", "minidl.tour.segmentation"),
    ("localization", "minidl.tour.localization"),
    ("detection", "minidl.tour.detection"),
    ("visualize", "minidl.tour.visualize"),
]
