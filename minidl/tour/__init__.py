"""``python -m minidl.tour`` — train small models headless and write an HTML report with figures.

Each chapter is a module with ``run(report, quick=False, device="cpu") -> dict of headline
numbers``; CHAPTERS lists them in order. ``--quick`` runs every chapter in seconds (used by the
tests); the full tour stays under ~15 minutes on 2 CPU cores. ``--device cuda`` runs the same
chapter code on a GPU: each chapter moves its models there (``model.to(device)``), the library
helpers (``train.fit``/``predict``, ``segment``, ``localize``, ``detect``, ``minidl.vis``) feed
them NumPy data on the model's device, and results come back to the host for plots and tables.
"""
CHAPTERS = [
    ("mlp", "minidl.tour.mlp"),
    ("segmentation", "minidl.tour.segmentation"),
    ("localization", "minidl.tour.localization"),
    ("detection", "minidl.tour.detection"),
    ("visualize", "minidl.tour.visualize"),
    ("captioning", "minidl.tour.captioning"),
]
