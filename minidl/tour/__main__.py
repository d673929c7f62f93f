"""Command line of the tour: ``python -m minidl.tour [--quick] [--device cpu|cuda] [--out DIR] [--only NAME ...]``."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

from .. import backend
from . import CHAPTERS
from .report import Report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.tour", description=__doc__)
    parser.add_argument("--out", default="minidl-report", help="folder for index.html and figures")
    parser.add_argument("--quick", action="store_true", help="tiny settings: every chapter in seconds")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the models train and run (cuda: needs CuPy and a GPU)")
    parser.add_argument("--only", nargs="*", metavar="NAME",
                        help=f"run only these chapters: {', '.join(n for n, _ in CHAPTERS)}")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not backend.cuda_available():
        parser.error("--device cuda: no usable GPU (CuPy is not installed, or it finds no CUDA device or "
                     "driver); use --device cpu")
    os.environ.setdefault("MPLBACKEND", "Agg")          # headless: never open a window
    import matplotlib
    matplotlib.use("Agg")

    names = [n for n, _ in CHAPTERS]
    unknown = set(args.only or []) - set(names)
    if unknown:
        parser.error(f"unknown chapter(s) {sorted(unknown)}; choose from {names}")
    device = backend.device_name(args.device)
    report = Report(args.out, "minidl tour" + (" (quick)" if args.quick else ""))
    report.text(f"Device: {device}.")
    print(f"[tour] device {device}", flush=True)
    summary = {}
    for name, module in CHAPTERS:
        if args.only and name not in args.only:
            continue
        start = time.time()
        print(f"[tour] chapter {name} ...", flush=True)
        results = importlib.import_module(module).run(report, quick=args.quick, device=args.device) or {}
        summary.update(results)
        print(f"[tour] chapter {name} done in {time.time() - start:.1f} s: {results}", flush=True)
    report.section("Summary")
    report.table([("device", device)] + sorted(summary.items()), ["measure", "value"])
    path = report.write()
    with open(os.path.join(report.out_dir, "summary.json"), "w") as f:     # for comparing runs (CPU vs GPU)
        json.dump({"device": device, "quick": args.quick, **summary}, f, indent=1, sort_keys=True, default=float)
    print(f"[tour] report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
