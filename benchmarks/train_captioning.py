"""Train the two captioners on the shapes scenes, evaluate them on held-out seeds, save their weights.

    flock /tmp/minidl-bench.lock python benchmarks/train_captioning.py --task all
    python benchmarks/train_captioning.py --task image_captioner_shapes [--steps N] [--no-save]
    python benchmarks/train_captioning.py --task dense_captioner_shapes --override pixel_grid=0   # ablation

Tasks (``minidl.models.pretrained.CONFIGS``):

* ``image_captioner_shapes`` — ``ImageCaptioner`` (CNN + LSTM) on whole scenes, trained from scratch
  on 20,000 training scenes (split seed 0); each step draws one of each scene's reference captions
  (COCO-style training). Evaluated with greedy and beam-3 decoding on three held-out test sets of
  500 scenes (dataset seeds 2, 3, 4): corpus BLEU-1…4 and CIDEr-D against all references.
* ``dense_captioner_shapes`` — ``DenseCaptioner`` (Fast R-CNN + LSTM on each box's region code beside
  its RoIAlign pixels), its detector
  initialised from the committed ``fast_rcnn_shapes`` weights, then the detection + caption loss
  trained jointly on 3,000 training scenes with jittered ground-truth proposals. Evaluated on three
  held-out sets of 150 scenes (seeds 2, 3, 4) with selective-search proposals: DenseCap's mAP
  (IoU × METEOR), its detection-only mAP, and per-box BLEU (each ground-truth object's caption
  against the caption of the detection that best covers it, IoU ≥ 0.5).

Each prints ``METRIC`` and ``RESULT {...}`` lines like ``train_lecture8.py``; a saved run writes its
weights to ``minidl/weights/<task>.npz`` and its record (means and [min, max] over the test seeds) to
``minidl/weights/training_records.json``. An ablation (``--override KEY=JSON ...``: a constructor
argument changed, one task only) writes no weights; its record goes to the same file under
``<task>[key=value,...]``, so the docs' ablation tables can be checked against it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from minidl.captioning import bleu, cider_d, vocab as V                     # noqa: E402
from minidl.captioning.densecap_eval import dense_caption_scores          # noqa: E402
from minidl.captioning.metrics import sentence_bleu                        # noqa: E402
from minidl.models import pretrained                                       # noqa: E402
from train_lecture8 import batches, cpu_name, test_proposals, train_steps  # noqa: E402

TEST_SEEDS = (2, 3, 4)
SCENE_LENGTH, REGION_LENGTH = 12, 8


def scene_caption_scores(model, vocab, seed, n=500, beam_size=1):
    """Corpus BLEU-1..4 and CIDEr-D of ``model``'s captions of ``n`` scenes of dataset seed ``seed``."""
    from minidl.data import ShapesDataset
    images, references = V.caption_data(ShapesDataset(n, 64, "scene", seed=seed), "scene")
    start = time.perf_counter()
    candidates = []
    for i in range(0, n, 100):
        candidates += model.caption(images[i:i + 100], vocab, max_length=SCENE_LENGTH, beam_size=beam_size)
    seconds = (time.perf_counter() - start) / n
    b = bleu(candidates, references)
    exact = float(np.mean([c in refs for c, refs in zip(candidates, references)]))
    return {"BLEU-1": b[0], "BLEU-2": b[1], "BLEU-3": b[2], "BLEU-4": b[3],
            "CIDEr-D": cider_d(candidates, references)[0], "exact": exact, "seconds_per_image": seconds}


def task_image_captioner(name, steps, overrides, n_train=20000, batch_size=32, lr=2e-3):
    vocab = V.shapes_vocabulary()
    images, references = V.caption_data(V.split_by_seed("train", n_train), "scene")
    model = pretrained.build(name, **overrides)
    plan = batches(n_train, batch_size, steps)
    rng = np.random.default_rng(0)

    def step(s):
        idx = plan[s]
        chosen = [references[i][rng.integers(len(references[i]))] for i in idx]   # one reference each
        return model.loss(images[idx], vocab.encode_batch(chosen, SCENE_LENGTH))
    seconds, losses = train_steps(model, step, steps, lr, warmup=100)
    result = {"train_seconds": seconds, "final_loss": float(np.mean(losses[-100:]))}
    for beam in (1, 3):
        runs = [scene_caption_scores(model, vocab, seed, beam_size=beam) for seed in TEST_SEEDS]
        tag = "greedy" if beam == 1 else f"beam{beam}"
        for key in runs[0]:
            values = [r[key] for r in runs]
            result[f"{tag}_{key}"] = float(np.mean(values))
            result[f"{tag}_{key}_range"] = [float(min(values)), float(max(values))]
    return model, result


def region_data(n, seed, vocab):
    """Scenes, their targets, each object's region caption (strings) and encoded (G_i, L) arrays."""
    from minidl.data import ShapesDataset
    ds = ShapesDataset(n, 64, "scene", seed=seed)
    items = [ds.generate(i) for i in range(n)]
    images, captions = V.caption_data(ds, "region")
    encoded = [vocab.encode_batch(c, REGION_LENGTH) for c in captions]
    return images, [t for _, t in items], captions, encoded


def dense_scores(model, vocab, seed, n=150):
    """DenseCap mAP, detection mAP and per-box BLEU on ``n`` held-out scenes of seed ``seed``."""
    images, targets, captions, _ = region_data(n, seed, vocab)
    proposals, proposal_seconds = test_proposals(images)
    start = time.perf_counter()
    described = model.describe(images, proposals, vocab, max_length=REGION_LENGTH)
    network_seconds = (time.perf_counter() - start) / n
    truth = [{"boxes": t["boxes"], "captions": c} for t, c in zip(targets, captions)]
    scores = dense_caption_scores(described, truth)
    # Per-box BLEU: every found object's caption against the caption of its best-covering detection.
    found = [(cand, [ref]) for cand, ref in scores["pairs"] if cand is not None]
    candidates, refs = [c for c, _ in found], [r for _, r in found]
    return {"densecap_mAP": scores["map"], "strict_mAP": scores["strict_map"], "detection_mAP": scores["detection_map"],
            "box_BLEU-4": bleu(candidates, refs)[3] if found else 0.0,
            "box_sentence_BLEU-1": float(np.mean([sentence_bleu(c, r, max_n=1) for c, r in found])) if found else 0.0,
            "objects_found": scores["objects_found"], "box_exact": scores["box_exact"],
            "proposal_seconds_per_image": proposal_seconds, "network_seconds_per_image": network_seconds}


def task_dense_captioner(name, steps, overrides, n_train=3000, batch_size=8, lr=1e-3, rois_per_image=64):
    from minidl.detection.roi_sampling import jitter_proposals
    vocab = V.shapes_vocabulary()
    model = pretrained.build(name, **overrides)
    # The detector starts from the committed Fast R-CNN; the caption decoder from scratch.
    model.load_state_dict(pretrained.load_pretrained("fast_rcnn_shapes").state_dict(), strict=False)
    images, targets, _, encoded = region_data(n_train, V.SPLIT_SEEDS["train"], vocab)
    plan = batches(n_train, batch_size, steps)
    rng = np.random.default_rng(0)

    def step(s):
        idx = plan[s]
        proposals = [jitter_proposals(targets[i]["boxes"], (64, 64), 64, rng) for i in idx]
        return model.loss(images[idx], proposals, [targets[i] for i in idx], [encoded[i] for i in idx],
                          rois_per_image=rois_per_image, rng=rng)[0]
    seconds, losses = train_steps(model, step, steps, lr, warmup=100)
    result = {"train_seconds": seconds, "final_loss": float(np.mean(losses[-100:]))}
    runs = [dense_scores(model, vocab, seed) for seed in TEST_SEEDS]
    for key in runs[0]:
        values = [r[key] for r in runs]
        result[key] = float(np.mean(values))
        result[f"{key}_range"] = [float(min(values)), float(max(values))]
    return model, result


TASKS = {"image_captioner_shapes": (task_image_captioner, 5000),
         "dense_captioner_shapes": (task_dense_captioner, 3000)}
HEADLINE = {"image_captioner_shapes": ("greedy_BLEU-4", "greedy_CIDEr-D", "beam3_BLEU-4", "beam3_CIDEr-D"),
            "dense_captioner_shapes": ("densecap_mAP", "strict_mAP", "detection_mAP", "box_BLEU-4")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", nargs="+", default=["all"], help=f"one or more of {list(TASKS)} or all")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--no-save", action="store_true", help="do not write minidl/weights/<task>.npz")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=JSON",
                        help="ablation: change a constructor argument, e.g. feed_features=false or pixel_grid=0 "
                             "(no weights written; the record is saved as <task>[key=value])")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.override:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--override {item!r}: expected KEY=JSON, e.g. feed_features=false")
    names = list(TASKS) if args.task == ["all"] else args.task
    for name in names:
        if name not in TASKS:
            parser.error(f"unknown task {name!r}; choose from {list(TASKS)}")
    if overrides and len(names) != 1:
        parser.error("--override changes one model's constructor: give exactly one --task")
    for name in names:
        fn, steps = TASKS[name]
        steps = args.steps or steps
        print(f"[{name}] training {steps} steps ...", flush=True)
        model, result = fn(name, steps, overrides)
        result = {"task": name, "steps": steps, "device": "cpu", "overrides": overrides, **result}
        print(f"METRIC {name} " + " ".join(f"{k}={result[k]:.4f}" for k in HEADLINE[name])
              + f" steps={steps} train_seconds={result['train_seconds']:.1f}", flush=True)
        print("RESULT " + json.dumps(result, default=float), flush=True)
        if args.no_save:
            continue
        record_name = name
        if overrides:       # an ablation: its record only
            record_name = name + "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(overrides.items())) + "]"
        else:
            path = pretrained.weights_path(name)
            model.save(path)
            result["weights_kib"] = round(os.path.getsize(path) / 1024, 1)
        pretrained.save_training_record(record_name, {**record_of(result), "cpu": cpu_name(),
                                                      "date": time.strftime("%Y-%m-%d")})


def record_of(result):
    """The JSON record of a run: numbers rounded to 4 places, [min, max] ranges kept, nested dicts dropped."""
    def rounded(v):
        return round(v, 4) if isinstance(v, float) else v
    return {k: ([rounded(x) for x in v] if isinstance(v, list) else rounded(v))
            for k, v in result.items() if not isinstance(v, dict)}


if __name__ == "__main__":
    main()
