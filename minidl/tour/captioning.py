"""Tour chapter (lectures 10 and 8): image captioning, then dense captioning.

Image captioning (lecture 10): a CNN encodes the whole scene, an LSTM writes one sentence about it
(``minidl.captioning.captioner``). Dense captioning (lecture 8, DenseCap): a detector finds every
object and the LSTM describes each box (``minidl.captioning.dense``). Both use the committed
weights of ``benchmarks/train_captioning.py`` on held-out scenes (dataset seed 1, the validation
split; the training record's figures are on seeds 2–4) and the captions of the template grammar
(``minidl.captioning.grammar``) as references. Numbers: corpus BLEU and CIDEr-D, the share of
exactly right sentences, DenseCap's mAP (box IoU × caption METEOR) and its detection-only mAP.
"""
from __future__ import annotations

import textwrap
import time

import numpy as np

from ..captioning import bleu, cider_d, shapes_vocabulary
from ..captioning.densecap_eval import dense_caption_scores
from ..captioning.vocab import caption_data
from ..data import ShapesDataset
from ..detection.proposals import selective_search
from ..models import pretrained
from ..ops import box_iou
from . import _pretrained

SCENE_LENGTH, REGION_LENGTH = 12, 8          # as benchmarks/train_captioning.py decodes
FIGURE_SCORE = 0.5                            # the dense figure draws detections scoring at least this


def _wrap(text, width=34):
    return "\n".join(textwrap.wrap(text, width)) or "(empty)"


def _image_captioning(report, quick, device):
    import matplotlib.pyplot as plt

    vocab = shapes_vocabulary()
    n = 8 if quick else 300
    images, references = caption_data(ShapesDataset(n, 64, "scene", seed=1), "scene")
    model, _ = _pretrained.load("image_captioner_shapes", report, device)
    report.text("Lecture 10 — image captioning. The references are the template grammar's true sentences "
                "about each scene (one object: 'a small red circle'; two or more: one sentence per ordered pair "
                "with a spatial relation, up to five references like COCO's). The CNN's 4×4 grid of features "
                "becomes one 256-number vector that sets the LSTM's first state and sits beside every word it "
                "reads; decoding feeds back the "
                "model's own words: greedy takes the best word each step, beam search keeps the 3 best "
                "partial sentences.")
    rows, results, captions, right = [], {}, {}, {}
    for name, beam in (("greedy", 1), ("beam 3", 3)):
        start = time.perf_counter()
        captions[name] = model.caption(images, vocab, max_length=SCENE_LENGTH, beam_size=beam)
        seconds = (time.perf_counter() - start) / n
        b = bleu(captions[name], references)
        cider = cider_d(captions[name], references)[0]
        right[name] = [c in refs for c, refs in zip(captions[name], references)]
        exact = float(np.mean(right[name]))
        single = [ok for ok, refs in zip(right[name], references) if len(refs) == 1]     # one-object scenes
        multi = [ok for ok, refs in zip(right[name], references) if len(refs) > 1]
        single_exact, multi_exact = (float(np.mean(v)) if v else float("nan") for v in (single, multi))
        rows.append([name, n, b[0], b[3], cider, exact, f"{single_exact:.0%} of {len(single)}",
                     f"{multi_exact:.0%} of {len(multi)}", seconds * 1000])
        key = name.replace(" ", "")
        results.update({f"cap_{key}_bleu4": b[3], f"cap_{key}_cider_d": cider, f"cap_{key}_exact": exact,
                        f"cap_{key}_single_object_exact": single_exact,
                        f"cap_{key}_multi_object_exact": multi_exact})
    record = pretrained.training_record("image_captioner_shapes") or {}
    trained = (f"{record['train_seconds']:.0f} s, {record['steps']} steps on {record.get('cpu', '?')}"
               if "train_seconds" in record else "not recorded")
    report.table(rows, ["decoding", "scenes", "BLEU-1", "BLEU-4", "CIDEr-D", "exactly a reference",
                        "one-object scenes exactly right", "scenes of 2+ objects exactly right", "ms / scene"])
    report.text(f"Training: {trained} (minidl/weights/training_records.json). 'Exactly a reference' counts "
                "sentences equal to one of the scene's (up to five) references: every word right, the relation "
                "included — a true sentence about a pair of objects that no reference names counts as wrong. "
                f"One vector for the whole scene names a lone object exactly right "
                f"{results['cap_greedy_single_object_exact']:.0%} of the time (greedy), a scene of two or more "
                f"objects {results['cap_greedy_multi_object_exact']:.0%}: read the figure for which words go "
                "wrong.")

    # the first four one-object scenes on top, the first four with more objects below
    lone = [k for k, refs in enumerate(references) if len(refs) == 1]
    rows_of = [lone[:4], [k for k in range(n) if k not in lone][:4]]
    fig, axes = plt.subplots(2, 4, figsize=(10, 7.4))
    for r, picks in enumerate(rows_of):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c >= len(picks):
                continue
            k = picks[c]
            ax.imshow(images[k].transpose(1, 2, 0))
            marks = {name: "✓" if right[name][k] else "✗" for name in captions}
            ax.set_title(f"{_wrap('greedy: ' + captions['greedy'][k])} {marks['greedy']}\n"
                         f"{_wrap('beam 3: ' + captions['beam 3'][k])} {marks['beam 3']}", fontsize=7, loc="left")
            ax.text(0, 1.0, _wrap("true: " + references[k][0], 40), transform=ax.transAxes, fontsize=6.5,
                    va="top", ha="left", color="white",
                    bbox=dict(facecolor="black", alpha=0.6, edgecolor="none", pad=1))
    fig.tight_layout()
    report.figure(fig, "Held-out scenes, one object each (top row) and two or more (bottom row), with the model's "
                       "greedy and beam-3 captions above each picture (✓: the "
                       "sentence is exactly one of the scene's references, ✗: it is not) and one true reference "
                       "on the picture.")
    return results


def _dense_captioning(report, quick, device, lone_object_exact):
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    vocab = shapes_vocabulary()
    n = 4 if quick else 60
    ds = ShapesDataset(n, 64, "scene", seed=1)
    images, region_refs = caption_data(ds, "region")
    targets = [ds.generate(i)[1] for i in range(n)]
    model, _ = _pretrained.load("dense_captioner_shapes", report, device)
    start = time.perf_counter()
    proposals = [selective_search(im, mode="fast", min_size=20) for im in images]
    proposal_seconds = (time.perf_counter() - start) / n
    start = time.perf_counter()
    described = model.describe(images, proposals, vocab, max_length=REGION_LENGTH)
    network_seconds = (time.perf_counter() - start) / n
    truth = [{"boxes": t["boxes"], "captions": c} for t, c in zip(targets, region_refs)]
    scores = dense_caption_scores(described, truth)      # both mAP grids, and each true object's best box
    found, exact = scores["objects_found"], scores["box_exact"]
    results = {"densecap_map": scores["map"], "densecap_strict_map": scores["strict_map"],
               "densecap_detection_map": scores["detection_map"], "densecap_objects_found": found,
               "densecap_box_exact": exact}
    report.text("Lecture 8 — dense captioning (DenseCap = detection + captioning). Fast R-CNN finds the objects "
                "among selective-search proposals; for every box it keeps, an LSTM reads the box head's region "
                "code beside a 4×4 RoIAlign grid of the box's own pixels and writes one description. DenseCap's "
                "mAP counts a detection as right when its box overlaps a true object (IoU ≥ 0.3 … 0.7) and its "
                "caption is close enough (METEOR > 0.05 … 0.25); the strict grid asks METEOR > 0.5 … 0.9, "
                "for these 3–4-word captions nearly the exact words.")
    record = pretrained.training_record("dense_captioner_shapes") or {}
    trained = (f"{record['train_seconds']:.0f} s, {record['steps']} steps (detector from fast_rcnn_shapes)"
               if "train_seconds" in record else "not recorded")
    report.text(f"Of the true objects, {found:.0%} have a detection at IoU ≥ 0.5 (any score), and "
                f"the caption of the one that overlaps most is exactly the object's for {exact:.0%} "
                f"of them — the whole-scene captioner above names even a lone object exactly "
                f"{lone_object_exact:.0%} of the time: describing each box from its own features is why DenseCap "
                "captions regions.")
    report.table([[n, scores["map"], scores["strict_map"], scores["detection_map"], found, exact,
                   proposal_seconds, network_seconds, trained]],
                 ["scenes", "DenseCap mAP", "strict mAP", "detection mAP", "objects found (IoU ≥ 0.5)",
                  "their captions exactly right", "proposals s/img", "network s/img", "training"])

    shown = min(n, 4)
    fig, axes = plt.subplots(1, shown, figsize=(2.7 * shown, 4.6), squeeze=False)
    for k, ax in enumerate(axes[0]):
        d, refs, t = described[k], region_refs[k], targets[k]
        keep = np.flatnonzero(np.asarray(d["scores"]) >= FIGURE_SCORE)
        ax.imshow(images[k].transpose(1, 2, 0))
        lines = []
        ious = box_iou(d["boxes"][keep], t["boxes"]) if len(keep) else np.zeros((0, len(refs)))
        for r, j in enumerate(keep):
            x1, y1, x2, y2 = d["boxes"][j]
            ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="white",
                                           lw=1.2))
            ax.text(x1, y1, str(r + 1), color="black", fontsize=7, va="top",
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
            g = int(np.argmax(ious[r])) if ious.shape[1] else -1
            mark = "✓" if g >= 0 and ious[r, g] >= 0.5 and d["captions"][j] == refs[g] else "✗"
            lines.append(f"{r + 1}: {d['captions'][j]} {mark} ({d['scores'][j]:.2f})")
        ax.axis("off")
        ax.set_title(_wrap("true: " + "; ".join(refs), 44), fontsize=6.5, loc="left")
        ax.text(0, -0.03, "\n".join(lines) or "(no detection scores ≥ 0.5)", transform=ax.transAxes, fontsize=7,
                va="top", ha="left")
    fig.tight_layout()
    report.figure(fig, f"Dense captions of held-out scenes: every detection scoring ≥ {FIGURE_SCORE} is "
                       "numbered on the picture and described below it (✓: the box overlaps a true object at "
                       "IoU ≥ 0.5 and its caption is exactly the caption of the object it overlaps most; ✗: "
                       "otherwise; detection score in brackets). Above each picture: the true region captions. "
                       "(The table counts per true object instead, whatever the detection's score.)")
    return results


def run(report, quick=False, device="cpu"):
    report.section("Lectures 10 and 8 — image captioning and dense captioning")
    results = _image_captioning(report, quick, device)
    results.update(_dense_captioning(report, quick, device, results["cap_greedy_single_object_exact"]))
    return results
