"""``--device`` of the tour and of the training scripts: the same chapter code on the CPU or a GPU.

Without a GPU, ``--device cuda`` must stop at once with a parser error naming cuda (before any
chapter runs or any weights are written). With one (``pytest -m gpu`` on a CUDA machine), every
chapter runs ``--quick`` on the GPU and reaches the numbers of the same run on the CPU.
"""
import importlib
import inspect
import json
import math
import pathlib
import subprocess
import sys

import pytest

import minidl
from minidl import backend
from minidl.tour import CHAPTERS
from minidl.tour.__main__ import main
from minidl.tour.report import Report

ROOT = pathlib.Path(__file__).resolve().parent.parent
no_gpu = pytest.mark.skipif(minidl.cuda_available(), reason="this machine has a GPU")


@pytest.mark.parametrize("name,module", CHAPTERS)
def test_every_chapter_takes_a_device_defaulting_to_cpu(name, module):
    parameter = inspect.signature(importlib.import_module(module).run).parameters.get("device")
    assert parameter is not None and parameter.default == "cpu"


def test_device_name_is_readable():
    assert backend.device_name("cpu") == "cpu"
    assert backend.device_name("cuda:0").startswith("cuda (")
    with pytest.raises(ValueError, match="device"):
        backend.device_name("tpu")


@no_gpu
def test_tour_refuses_cuda_without_a_gpu_at_once(tmp_path, capsys):
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda", "--quick", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no usable GPU" in err and "--device cpu" in err
    assert not out.exists()                       # failed before any chapter ran


def test_tour_rejects_an_unknown_device(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--device", "tpu", "--out", str(tmp_path)])
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_tour_cpu_device_is_named_in_report_and_summary(tmp_path):
    # in-process, after the module above probed CUDA: seeding must not touch CuPy without a GPU
    out = tmp_path / "report"
    assert main(["--device", "cpu", "--quick", "--only", "mlp", "--out", str(out)]) == 0
    assert "Device: cpu." in (out / "index.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["quick"] is True and summary["mlp_train_accuracy"] > 0.8


@no_gpu
@pytest.mark.parametrize("script", ["train_lecture8.py", "train_fast_style.py"])
def test_training_scripts_refuse_cuda_without_a_gpu(script):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--device", "cuda", "--no-save"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--device cuda" in proc.stderr and "no usable GPU" in proc.stderr
    assert "METRIC" not in proc.stdout


# ---- on a GPU: the same numbers as the CPU --------------------------------------------------
#: headline results compared between devices: absolute tolerance, or ("rel", r) for losses. The
#: quick chapters evaluate few images (16 for localization: one flip is 0.0625), so the bounds
#: allow one or two different decisions; times and the sanity-check correlations are not compared.
TOLERANCE = {
    "mlp_train_accuracy": 0.03,
    "seg_fcn_miou": 0.02, "seg_sliding_miou": 0.03,
    "loc_accuracy": 0.07, "loc_mean_box_iou": 0.02, "pose_pck_0.1": 0.05, "pose_pck_0.2": 0.05,
    "det_rcnn_map50": 0.1, "det_fast_rcnn_map50": 0.1, "det_ssd_map50": 0.1,
    "vis_classifier_accuracy": 0.03,
    "fast_style_batch_test_loss": ("rel", 0.05), "fast_style_instance_test_loss": ("rel", 0.05),
}


@pytest.mark.gpu
@pytest.mark.skipif(not minidl.cuda_available(), reason="no CUDA GPU (CuPy + device)")
@pytest.mark.parametrize("name,module", CHAPTERS)
def test_quick_chapter_on_cuda_matches_cpu(name, module, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    run = importlib.import_module(module).run
    cpu = run(Report(tmp_path / "cpu"), quick=True, device="cpu")
    gpu = run(Report(tmp_path / "cuda"), quick=True, device="cuda")
    assert gpu.keys() == cpu.keys()
    for key, value in gpu.items():
        assert isinstance(value, (bool, int, float)) and math.isfinite(value), (key, value)
        bound = TOLERANCE.get(key)
        if bound is None:
            continue
        if isinstance(bound, tuple):
            assert value == pytest.approx(cpu[key], rel=bound[1]), (key, value, cpu[key])
        else:
            assert abs(value - cpu[key]) <= bound, (key, value, cpu[key])
