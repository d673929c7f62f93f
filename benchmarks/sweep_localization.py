"""Choose the localizer's box-loss weight by a validation metric, not by the training loss (lecture 8).

    flock /tmp/minidl-bench.lock python benchmarks/sweep_localization.py
    python benchmarks/sweep_localization.py --seeds 0 --steps 150 --no-figure

The multi-task loss ``L = cross_entropy + box_weight · box_loss`` changes with its weight and with
the form of the box loss (``"l2"`` or ``"smooth_l1"``, ``LocalizationLoss``'s options), so the
final losses of different settings are not comparable. This sweeps box_weight ∈ {0.1, 1, 10, 100}
× box_loss ∈ {l2, smooth_l1} with ``minidl.train.sweep`` and ranks the settings by **correct
localization** on held-out single shapes (right class AND box IoU ≥ 0.5 — assignment 6's metric).

Each setting trains the committed localizer architecture's fully connected part (shared layer,
class head, box head; fresh init) for ``--steps`` Adam steps (lr 3e-3, cosine decay, batch 32) on
top of the committed ``localizer_shapes`` backbone, frozen (transfer learning; features computed
once per image set — ``minidl.models.localization_sweep.train_heads``). Training the whole network from
scratch does not fit the time: the committed weights took 1200 steps / 111 s for one setting.

Seeds: for seed s, the training images come from dataset seed 10 + s, the held-out images from
dataset seed 20 + s (the committed backbone was trained on seed 0 and evaluated on seed 1), and
the heads' initialisation and batch order from s. Prints the table (per setting: final training
loss mean over seeds, metric mean and min–max, seconds), which setting the metric and the loss pick
for each seed, writes the figure to docs/figures/sweep_localization.png and one ``RESULT {json}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.data import ShapesDataset                                            # noqa: E402
from minidl.models import pretrained                                             # noqa: E402
from minidl.models.localization import LocalizationLoss, localize                 # noqa: E402
from minidl.autograd import Tensor, no_grad                                         # noqa: E402
from minidl.metrics import correct_localization                                  # noqa: E402
from minidl.models.localization_sweep import (SWEEP_AXES, LocalizerHeads, backbone_features,   # noqa: E402
                                              evaluate_heads, heads_loss, train_heads)
from minidl.train import SweepResult, SweepRow, config_grid, sweep                # noqa: E402

METRIC = "correct localization"
FIGURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "figures", "sweep_localization.png")


def singles(n, seed):
    """(images (n, 3, 64, 64), labels (n,), boxes (n, 4) in pixels) of one-shape images."""
    ds = ShapesDataset(n, 64, "single", seed=seed)
    items = [ds[i] for i in range(n)]
    return (np.stack([im for im, _ in items]), np.array([t["labels"][0] for _, t in items]),
            np.stack([t["boxes"][0] for _, t in items]))


def check_against_library(backbone_from, images, labels, boxes, features):
    """The shortcuts agree with the library: ``heads_loss`` on features = ``LocalizationLoss`` on
    images, and ``evaluate_heads`` = ``localize`` + the metric. Returns the two differences."""
    config = {"box_weight": 10.0, "box_loss": "smooth_l1"}
    localizer, _ = train_heads(backbone_from, features[:256], labels[:256], boxes[:256], config, steps=20, seed=0)
    with no_grad():
        on_images = LocalizationLoss(config["box_weight"], config["box_loss"])(
            localizer, Tensor(images[:64]), (labels[:64], Tensor(boxes[:64])))
        on_features = heads_loss(LocalizerHeads(localizer), Tensor(features[:64]), labels[:64], boxes[:64],
                                 config["box_weight"], config["box_loss"])
    pred_labels, pred_boxes = localize(localizer, images)
    via_library = correct_localization(pred_labels, pred_boxes, labels, boxes)
    via_features = evaluate_heads(localizer, features, labels, boxes)[METRIC]
    return abs(float(on_images.item()) - float(on_features.item())), abs(via_library - via_features)


def run_seed(backbone_from, seed, steps, n_train, n_val, check=False):
    start = time.perf_counter()
    x, y, b = singles(n_train, 10 + seed)
    xv, yv, bv = singles(n_val, 20 + seed)
    features, val_features = backbone_features(backbone_from, x), backbone_features(backbone_from, xv)
    prep = time.perf_counter() - start
    print(f"[seed {seed}] {n_train} training (dataset seed {10 + seed}) + {n_val} held-out (seed {20 + seed}) "
          f"images and their backbone features in {prep:.1f} s", flush=True)
    checks = check_against_library(backbone_from, xv, yv, bv, val_features) if check else None
    if checks:
        print(f"  check: |LocalizationLoss - heads_loss| = {checks[0]:.2e}, |metric via localize - via features| "
              f"= {checks[1]:.2e}", flush=True)
    result = sweep(config_grid(**SWEEP_AXES),
                   lambda config: train_heads(backbone_from, features, y, b, config, steps, seed),
                   lambda localizer: evaluate_heads(localizer, val_features, yv, bv), METRIC)
    return result, prep, checks


def label(config):
    return f"{config['box_loss']}, w={config['box_weight']:g}"


def summarize(results):
    """One row per config over the seeds: loss mean, metric mean / min / max, seconds mean."""
    rows = []
    for k, row in enumerate(results[0].rows):
        per_seed = [r.rows[k] for r in results]
        metric = np.array([r.metrics[METRIC] for r in per_seed])
        rows.append({**row.config, "loss_mean": float(np.mean([r.loss for r in per_seed])),
                     "metric_mean": float(metric.mean()), "metric_min": float(metric.min()),
                     "metric_max": float(metric.max()),
                     "accuracy_mean": float(np.mean([r.metrics["accuracy"] for r in per_seed])),
                     "mean_box_iou_mean": float(np.mean([r.metrics["mean box IoU"] for r in per_seed])),
                     "seconds_mean": float(np.mean([r.seconds for r in per_seed]))})
    return rows


def figure(summary, seeds, steps, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    mean = SweepResult([SweepRow({k: r[k] for k in SWEEP_AXES}, r["loss_mean"], {METRIC: r["metric_mean"]})
                        for r in summary], METRIC)
    fig = mean.plot()
    metric_ax = fig.axes[1]
    means = np.array([r["metric_mean"] for r in summary])
    spread = [means - [r["metric_min"] for r in summary], [r["metric_max"] for r in summary] - means]
    metric_ax.errorbar(means, np.arange(len(summary)), xerr=spread, fmt="none", ecolor="black", capsize=3)
    for text, r in zip(metric_ax.texts, summary):          # move each value label past its whisker
        text.xy = text.xyann = (r["metric_max"], text.xy[1])
    metric_ax.set_xlabel(f"validation {METRIC} (mean over seeds)")
    fig.suptitle(f"Localizer box-loss sweep: mean over {len(seeds)} seeds ({steps} steps each; "
                 "whiskers: min–max of the metric over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300, help="training steps per setting")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=500)
    parser.add_argument("--figure", default=FIGURE)
    parser.add_argument("--no-figure", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if not os.path.exists(pretrained.weights_path("localizer_shapes")):
        parser.error("minidl/weights/localizer_shapes.npz is missing: "
                     "python benchmarks/train_lecture8.py --task localizer_shapes")
    backbone_from = pretrained.load_pretrained("localizer_shapes").eval()
    results, picks, checks = [], [], None
    for i, seed in enumerate(args.seeds):
        result, _, c = run_seed(backbone_from, seed, args.steps, args.n_train, args.n_val, check=(i == 0))
        checks = checks or c
        results.append(result)
        picks.append({"seed": seed, "by_metric": label(result.best.config),
                      "by_loss": label(result.best_by_loss.config),
                      "metric_of_metric_pick": result.best.metrics[METRIC],
                      "metric_of_loss_pick": result.best_by_loss.metrics[METRIC]})
    summary = summarize(results)
    print(f"\nMean over seeds {args.seeds} ({args.steps} steps per setting, {args.n_val} held-out images per seed):")
    header = f"{'box_loss':>9} {'weight':>6} {'train loss':>10} {METRIC + ' mean [min-max]':>34} " \
             f"{'accuracy':>8} {'box IoU':>7} {'seconds':>7}"
    print(header)
    for r in summary:
        print(f"{r['box_loss']:>9} {r['box_weight']:>6g} {r['loss_mean']:>10.4f} "
              f"{r['metric_mean']:>22.3f} [{r['metric_min']:.3f}-{r['metric_max']:.3f}] "
              f"{r['accuracy_mean']:>8.3f} {r['mean_box_iou_mean']:>7.3f} {r['seconds_mean']:>7.2f}")
    for p in picks:
        print(f"seed {p['seed']}: the metric picks {p['by_metric']} ({p['metric_of_metric_pick']:.3f}); "
              f"the lowest loss picks {p['by_loss']} ({p['metric_of_loss_pick']:.3f})")
    if not args.no_figure:
        figure(summary, args.seeds, args.steps, args.figure)
        print(f"figure written to {os.path.relpath(args.figure)}")
    total = time.perf_counter() - start
    out = {"steps": args.steps, "seeds": args.seeds, "n_train": args.n_train, "n_val": args.n_val,
           "metric": METRIC, "configs": summary, "picks": picks, "total_seconds": total,
           "check_loss_diff": checks[0], "check_metric_diff": checks[1]}
    print("RESULT " + json.dumps(rounded(out), separators=(",", ":")), flush=True)


def rounded(value):
    """Floats to 4 decimals inside nested dicts/lists (for the RESULT line)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


if __name__ == "__main__":
    main()
