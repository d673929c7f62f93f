"""The main job: ``python -m minidl.tour --quick`` runs every chapter and writes the HTML report."""
import json
import os
import subprocess
import sys

from minidl.tour import CHAPTERS


def test_quick_tour_writes_report_with_figures(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "minidl.tour", "--quick", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (out / "index.html").read_text()
    figures = sorted(p.name for p in out.glob("fig_*.png"))
    assert len(figures) >= len(CHAPTERS)
    for name in figures:
        assert f'src="{name}"' in html and (out / name).stat().st_size > 5000
    for name, _ in CHAPTERS:
        assert f"chapter {name} done" in proc.stdout
    assert "mlp_train_accuracy" in html
    assert "Device: cpu." in html and "[tour] device cpu" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["mlp_train_accuracy"] > 0.8 and "seg_fcn_miou" in summary


def test_tour_rejects_unknown_chapter(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "minidl.tour", "--only", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown chapter" in proc.stderr
