"""Command line of the tour: ``python -m minidl.tour [--quick] [--out DIR] [--only NAME ...]``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from . import CHAPTERS
from .report import Report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.tour", description=__doc__)
    parser.add_argument("--out", default="minidl-report", help="folder for index.html and figures")
    parser.add_argument("--quick", action="store_true", help="tiny settings: every chapter in seconds")
    parser.add_argument("--only", nargs="*", metavar="NAME",
                        help=f"run only these chapters: {', '.join(n for n, _ in CHAPTERS)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")          # headless: never open a window
    import matplotlib
    matplotlib.use("Agg")

    names = [n for n, _ in CHAPTERS]
    unknown = set(args.only or []) - set(names)
    if unknown:
        parser.error(f"unknown chapter(s) {sorted(unknown)}; choose from {names}")
    report = Report(args.out, "minidl tour" + (" (quick)" if args.quick else ""))
    summary = {}
    for name, module in CHAPTERS:
        if args.only and name not in args.only:
            continue
        start = time.time()
        print(f"[tour] chapter {name} ...", flush=True)
        results = importlib.import_module(module).run(report, quick=args.quick) or {}
        summary.update(results)
        print(f"[tour] chapter {name} done in {time.time() - start:.1f} s: {results}", flush=True)
    report.section("Summary")
    report.table(sorted(summary.items()), ["measure", "value"])
    path = report.write()
    print(f"[tour] report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
