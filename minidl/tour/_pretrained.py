"""Tour helper: the committed weights (lecture 8, captioning), or an untrained model with a note when missing."""
from __future__ import annotations

import os

from ..models import pretrained


def load(name, report, device="cpu"):
    """``(model, trained)``: the pretrained model on ``device``, or a fresh one (and a note in the report)."""
    retrain = pretrained.retrain_command(name)
    if os.path.exists(pretrained.weights_path(name)):
        report.model(name, f"loaded from minidl/weights/{name}.npz (committed)", retrain)
        return pretrained.load_pretrained(name).to(device), True
    report.model(name, "UNTRAINED: weights missing", retrain)
    report.text(f"Weights {name}.npz are missing (run `{retrain}`): showing an untrained model.")
    return pretrained.build(name).eval().to(device), False
