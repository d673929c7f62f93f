"""A tiny HTML report: sections of text, tables and matplotlib figures saved as PNG files.

The tour writes everything into one folder (``index.html`` + ``fig_*.png``) that opens in any
browser, so a headless machine can produce something a person would rather look at than read.
"""
from __future__ import annotations

import html
import os
import time


class Report:
    def __init__(self, out_dir, title="minidl tour"):
        self.out_dir = os.path.abspath(out_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        self.title = title
        self.parts = []
        self.figures = 0
        self.started = time.time()
        self.models = []            # (model, where it came from, how to retrain it): a table on top

    def model(self, name, source, retrain=""):
        """Record where a model shown in the report comes from (trained during this run, or loaded
        from committed weights) and how to retrain it; ``write`` lists them before the chapters.
        A model used by several chapters or detectors is listed once."""
        if (name, source, retrain) not in self.models:
            self.models.append((name, source, retrain))

    def section(self, title):
        self.parts.append(f"<h2>{html.escape(title)}</h2>")

    def text(self, message):
        self.parts.append(f"<p>{html.escape(message)}</p>")

    def table(self, rows, header):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def figure(self, fig, caption=""):
        """Save a matplotlib Figure as PNG next to index.html and close it."""
        import matplotlib.pyplot as plt
        self.figures += 1
        name = f"fig_{self.figures:02d}.png"
        fig.savefig(os.path.join(self.out_dir, name), dpi=90, bbox_inches="tight")
        plt.close(fig)
        self.parts.append(f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return name

    def write(self):
        elapsed = time.time() - self.started
        models = ""
        if self.models:
            rows = "".join("<tr>" + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in row) + "</tr>"
                           for row in self.models)
            models = ("<h2>Models in this report</h2><table><tr><th style=\"text-align:left\">model</th>"
                      "<th style=\"text-align:left\">where it comes from</th>"
                      f"<th style=\"text-align:left\">how to retrain it</th></tr>{rows}</table>")
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
img{{max-width:100%}}figcaption{{color:#555;font-size:90%}}</style></head><body>
<h1>{html.escape(self.title)}</h1><p>Generated in {elapsed:.0f} s.</p>
{models}{''.join(self.parts)}</body></html>"""
        path = os.path.join(self.out_dir, "index.html")
        with open(path, "w") as f:
            f.write(page)
        return path


def _fmt(cell):
    return f"{cell:.4g}" if isinstance(cell, float) else str(cell)
