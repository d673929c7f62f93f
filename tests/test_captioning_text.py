"""Tests of the text side of captioning: shapes colours, grammar, vocabulary, metrics, decoding.

Frozen reference values carry their provenance in a comment. The live comparisons with NLTK,
coco-caption (``pycocoevalcap``) and the Meteor 1.5 jar run only where those are installed
(they are not minidl dependencies); docs/captioning.md records the agreement measured with them.
"""
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from minidl.captioning import decode, grammar, metrics
from minidl.captioning.decode import beam_search, greedy_decode
from minidl.captioning.grammar import (COLOUR_BINS, LARGE_FROM, SMALL_BELOW, colour_name, describe_object,
                                       grammar_words, hue_degrees, region_captions, relation, scene_captions,
                                       size_word)
from minidl.captioning.metrics import (bleu, cider_d, meteor_alignment, meteor_exact, modified_precision,
                                       sentence_bleu)
from minidl.captioning.vocab import SPLIT_SEEDS, Vocabulary, caption_data, split_by_seed
from minidl.data import ShapesDataset, shapes
from minidl.data.shapes import make_pose_image, make_shapes_image

CAPTION_RE = re.compile(r"^[a-z]+( [a-z]+)*$")


# ---- 1. colours in the shapes scenes, without changing a single draw ------------------------------

def _item_hashes(image, target):
    """sha256 prefixes of the image bytes and of the labels that existed before ``colours``."""
    h_image = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]
    h = hashlib.sha256()
    for key in ("labels", "boxes", "masks", "semantic_mask", "keypoints"):
        a = np.ascontiguousarray(target[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h_image, h.hexdigest()[:16]


# Computed with the code *before* colours were recorded (minidl/data/shapes.py at commit 03aad7c,
# NumPy 2.4.6, x86-64), by this very hashing: (mode, size, seed, index, image hash, labels hash,
# last 16 hex digits of the item generator's PCG64 state after the item was made — the same
# state means the same number of random draws).
BEFORE_COLOURS = [
    ("scene", 64, 0, 0, "48058830eef97287", "0a912ec1b686d8f2", "488b68b42b6ebd5d"),
    ("scene", 64, 0, 1, "ea7fd36ed064222e", "5df0ef85e7a872dc", "a611f3c0218933f2"),
    ("scene", 64, 0, 2, "b25a43ed16a3e3d7", "b689f09f39c2c97d", "5331aa53629e77d7"),
    ("scene", 64, 0, 3, "c107e773a8516c1e", "e0f4b29d75df49c5", "32f46aa5d2692b0e"),
    ("scene", 64, 0, 4, "7da9297f3789d5d8", "83a788f1b950b125", "4b8c9bb33c3999cb"),
    ("scene", 64, 0, 5, "991e549315f75c4f", "d958f99320bba5b3", "bcd72b96862a1cde"),
    ("scene", (48, 80), 3, 0, "b93773b9a6d6c914", "932f4de8e6f1715d", "83f72bea19c639c5"),
    ("single", 64, 0, 0, "f4e8fdb6964bc694", "223539562e14220a", "b9bd45e6f9dbc9cd"),
    ("single", 64, 0, 1, "71bc10cef201996a", "1112aeff591b2ec4", "68033de4f0f1a54e"),
    ("pose", 64, 0, 0, "5f9f37d65cff9649", "da80554072243ea6", "34251a2d7a399dc8"),
    ("pose", 64, 0, 1, "d4d1d6c3f7bfe109", "cbc0cb51ab5af989", "d165b98438d168b2"),
    ("pose", 64, 0, 2, "0e1a2941e8fb1103", "de8f904270c7bf51", "e565f9b0e9af6185"),
]


@pytest.mark.parametrize("mode, size, seed, index, image_hash, labels_hash, rng_state", BEFORE_COLOURS)
def test_colours_change_no_image_label_or_draw(mode, size, seed, index, image_hash, labels_hash, rng_state):
    image, target = ShapesDataset(index + 1, size, mode, seed).generate(index)
    rng = np.random.default_rng([seed, index])
    if mode == "pose":
        make_pose_image(rng, size)
    else:
        make_shapes_image(rng, size, single=mode == "single")
    assert hex(rng.bit_generator.state["state"]["state"])[-16:] == rng_state, "the number of random draws changed"
    h_image, h_labels = _item_hashes(image, target)
    assert h_labels == labels_hash, "labels, boxes, masks, semantic mask or keypoints changed"
    assert h_image == image_hash, "image pixels changed"


@pytest.mark.parametrize("mode", ["scene", "single", "pose"])
def test_colours_are_the_painted_base_colours(mode, monkeypatch):
    drawn = []
    original = shapes._contrasting_colour

    def recording(rng, background_colour, min_distance=0.35):
        drawn.append(original(rng, background_colour, min_distance))
        return drawn[-1]

    monkeypatch.setattr(shapes, "_contrasting_colour", recording)
    ds = ShapesDataset(6, 64, mode, seed=7)
    for i in range(6):
        drawn.clear()
        _, target = ds.generate(i)
        colours = target["colours"]
        assert colours.dtype == np.float32 and colours.shape == (len(target["labels"]), 3)
        assert np.all((colours >= 0) & (colours <= 1))
        if mode == "pose":
            # distractors behind the figure are painted first, then the figure, then front ones
            assert any(np.array_equal(colours[0], c) for c in drawn)
        else:
            np.testing.assert_array_equal(colours, np.array(drawn, np.float32).reshape(-1, 3))


def test_colour_names_match_the_painted_pixels():
    ds = ShapesDataset(120, 64, "scene", seed=5)
    boundaries = np.array([start for _, start in COLOUR_BINS[1:]])     # where the name changes
    errors, checked = [], 0
    for i in range(len(ds)):
        image, target = ds.generate(i)
        for mask, colour in zip(target["masks"], target["colours"]):
            mean = image[:, mask].mean(axis=1)         # shading ramp + noise average out; hue survives
            errors.append(abs((hue_degrees(mean) - hue_degrees(colour) + 180) % 360 - 180))
            if np.min(np.abs(boundaries - hue_degrees(colour))) > 8:   # off a bin edge: must agree
                assert colour_name(mean) == colour_name(colour)
                checked += 1
    assert checked > 150 and np.median(errors) < 1.0 and max(errors) < 8


# ---- 2. the grammar -----------------------------------------------------------------------------------

def test_hue_inverts_the_generators_hsv():
    for seed in range(300):
        h = np.random.default_rng(seed).uniform(0, 1)        # _random_colour draws the hue first
        colour = shapes._random_colour(np.random.default_rng(seed))
        assert abs((hue_degrees(colour) - 360 * h + 180) % 360 - 180) < 1e-3


@pytest.mark.parametrize("rgb, name", [((1, 0, 0), "red"), ((1, .5, 0), "orange"), ((1, 1, 0), "yellow"),
                                       ((0, 1, 0), "green"), ((0, 1, 1), "cyan"), ((0, 0, 1), "blue"),
                                       ((.5, 0, 1), "purple"), ((1, 0, 1), "pink"), ((1, 0, .1), "red")])
def test_colour_names_of_primaries(rgb, name):
    assert colour_name(rgb) == name


def test_size_words_and_thresholds():
    assert SMALL_BELOW < LARGE_FROM                            # the unnamed gap between them
    assert size_word([0, 0, 0.21 * 64, 5], 64) == "small"
    assert size_word([0, 0, 5, 0.25 * 64], 64) == ""
    assert size_word([0, 0, 0.33 * 64, 5], 64) == "large"
    assert size_word([0, 0, 0.33 * 64, 5], (64, 128)) == "large"   # the shorter side is the unit
    with pytest.raises(ValueError, match="image_size"):
        size_word([0, 0, 1, 1], "big")
    with pytest.raises(ValueError, match="box"):
        size_word([0, 0, 1], 64)


def test_relation_by_dominant_axis():
    a = [10, 10, 20, 20]
    assert relation(a, [40, 12, 50, 22]) == "left of"
    assert relation([40, 12, 50, 22], a) == "right of"
    assert relation(a, [12, 40, 22, 50]) == "above"
    assert relation([12, 40, 22, 50], a) == "below"
    assert relation(a, [30, 30, 40, 40]) == "left of"          # a tie goes to the horizontal words


def _parse(caption, descriptions):
    """Split "<desc> <relation> <desc>" into its parts, trying each relation phrase."""
    for phrase in grammar.RELATION_WORDS:
        for subject in set(descriptions):
            if caption.startswith(subject + " " + phrase + " "):
                return subject, phrase, caption[len(subject) + len(phrase) + 2:]
    raise AssertionError(f"cannot parse {caption!r}")


def test_captions_of_generated_scenes_are_true():
    ds = ShapesDataset(80, 64, "scene", seed=11)
    vocab = Vocabulary(grammar_words())
    for i in range(len(ds)):
        _, target = ds.generate(i)
        regions = region_captions(target, 64)
        assert len(regions) == len(target["labels"])
        for k, caption in enumerate(regions):
            words = caption.split()
            assert words[0] == "a" and words[-1] == shapes.SHAPE_CLASSES[target["labels"][k]]
            assert colour_name(target["colours"][k]) in words
        scene = scene_captions(target, 64)
        boxes = target["boxes"]
        if len(regions) == 1:
            assert scene == regions
        else:
            assert len(scene) == min(5, len(regions) * (len(regions) - 1))
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            assert scene[0].startswith(regions[int(np.argmax(areas))] + " ")   # largest object first
        for caption in scene:
            if len(regions) > 1:
                subject, phrase, obj = _parse(caption, regions)
                centres = (boxes[:, :2] + boxes[:, 2:]) / 2
                # Some pair of objects with these descriptions stands in this relation (checked
                # on the box centres here, independently of grammar.relation).
                ok = False
                for a, b in itertools.permutations(range(len(regions)), 2):
                    if regions[a] != subject or regions[b] != obj:
                        continue
                    dx, dy = centres[b] - centres[a]
                    horizontal = abs(dx) >= abs(dy)
                    ok |= {"left of": horizontal and dx > 0, "right of": horizontal and dx < 0,
                           "above": not horizontal and dy > 0, "below": not horizontal and dy < 0}[phrase]
                assert ok, caption
        for caption in regions + scene:
            assert CAPTION_RE.match(caption), caption
            ids = vocab.encode(caption, 16)
            assert vocab.unk_index not in ids
            assert vocab.decode(ids) == caption


def test_scene_caption_order_and_limits():
    target = {"labels": np.array([0, 1, 2]), "colours": np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float32),
              "boxes": np.array([[2, 2, 10, 10], [40, 5, 60, 25], [5, 40, 15, 50]], np.float32)}
    # areas: 64, 400, 100 -> ranks: square (1), triangle (2), circle (0)
    assert scene_captions(target, 64, max_captions=6) == [
        "a blue square right of a small green triangle", "a small green triangle left of a blue square",
        "a blue square right of a small red circle", "a small red circle left of a blue square",
        "a small green triangle below a small red circle", "a small red circle above a small green triangle"]
    assert len(scene_captions(target, 64)) == 5
    empty = {"labels": np.zeros(0, np.int64), "boxes": np.zeros((0, 4)), "colours": np.zeros((0, 3))}
    assert scene_captions(empty, 64) == [] and region_captions(empty, 64) == []
    with pytest.raises(ValueError, match="max_captions"):
        scene_captions(target, 64, max_captions=0)


def test_grammar_on_pose_and_subset_classes():
    _, target = ShapesDataset(1, 64, "pose", seed=0).generate(0)
    assert target["colours"].shape == (1, 3)
    assert describe_object(target, 0, 64, classes=("person",)).endswith(" person")
    ds = ShapesDataset(3, 64, "scene", seed=0, classes=("star", "circle"))
    _, caps = caption_data(ds, kind="region")
    assert all(c.split()[-1] in ("star", "circle") for cs in caps for c in cs)


def test_grammar_bad_input():
    _, target = ShapesDataset(1, 64, "scene", seed=0).generate(0)
    with pytest.raises(ValueError, match="k must"):
        describe_object(target, len(target["labels"]), 64)
    with pytest.raises(TypeError, match="target"):
        describe_object([1, 2], 0, 64)
    with pytest.raises(ValueError, match="colours"):
        describe_object({"labels": target["labels"], "boxes": target["boxes"]}, 0, 64)
    with pytest.raises(ValueError, match="classes"):
        describe_object(target, 0, 64, classes=())
    with pytest.raises(ValueError, match="rgb"):
        colour_name([1, 0])


# ---- 3. vocabulary and split ---------------------------------------------------------------------------

def test_vocabulary_round_trip(tmp_path):
    vocab = Vocabulary(["a red circle", "A blue  square", "a red star"], min_count=1)
    assert vocab.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert (vocab.pad_index, vocab.start_index, vocab.end_index, vocab.unk_index) == (0, 1, 2, 3)
    assert vocab.words[4:] == sorted(["a", "red", "circle", "blue", "square", "star"])
    ids = vocab.encode("a red circle", 7)
    assert ids.dtype == np.int64 and ids.tolist() == [1, vocab.index_of["a"], vocab.index_of["red"],
                                                      vocab.index_of["circle"], 2, 0, 0]
    assert vocab.decode(ids) == "a red circle"
    assert vocab.decode(ids[1:]) == "a red circle"              # generated ids come without <start>
    assert vocab.decode([vocab.index_of["red"], 2, vocab.index_of["star"]]) == "red"    # stops at <end>
    assert vocab.decode([vocab.index_of["red"], vocab.index_of["star"]]) == "red star"  # never ended
    assert vocab.decode(vocab.encode("a purple circle", 6)) == "a <unk> circle"
    batch = vocab.encode_batch(["a red circle", "blue star"], 6)
    assert batch.shape == (2, 6) and vocab.decode_batch(batch) == ["a red circle", "blue star"]
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(vocab.to_dict()))
    again = Vocabulary.from_dict(json.loads(path.read_text()))
    assert again == vocab and np.array_equal(again.encode("a blue square", 8), vocab.encode("a blue square", 8))
    rare = Vocabulary(["a red circle", "a blue circle"], min_count=2)
    assert "red" not in rare and "circle" in rare


def test_vocabulary_bad_input():
    vocab = Vocabulary(["a red circle"])
    with pytest.raises(ValueError, match="max_length"):
        vocab.encode("a red circle", 1)
    with pytest.raises(ValueError, match="truncate"):
        vocab.encode("a red circle", 4)
    assert vocab.decode(vocab.encode("a red circle", 4, truncate=True)) == "a red"
    with pytest.raises(TypeError, match="caption"):
        vocab.encode(["a", "red"], 8)
    with pytest.raises(TypeError, match="captions"):
        Vocabulary("a red circle")
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary(["a"], min_count=0)
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([0, 99])
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([[1, 2]])
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([1.5, 2.0])
    with pytest.raises(ValueError, match="words"):
        Vocabulary.from_dict({"words": ["a", "b"]})
    with pytest.raises(ValueError, match="to_dict"):
        Vocabulary.from_dict([1, 2])


def test_split_by_seed_and_caption_data():
    assert SPLIT_SEEDS == {"train": 0, "val": 1, "test": 2}
    datasets = {split: split_by_seed(split, 4, size=48, max_objects=3) for split in SPLIT_SEEDS}
    assert [d.seed for d in datasets.values()] == [0, 1, 2] and datasets["val"].max_objects == 3
    images = {split: caption_data(d)[0] for split, d in datasets.items()}
    assert images["train"].shape == (4, 3, 48, 48) and images["train"].dtype == np.float32
    for a, b in itertools.combinations(SPLIT_SEEDS, 2):              # no scene shared between splits
        assert not any(np.array_equal(x, y) for x in images[a] for y in images[b])
    _, captions = caption_data(datasets["train"], max_captions=2)
    assert all(1 <= len(c) <= 2 for c in captions)
    _, regions = caption_data(datasets["train"], kind="region")
    assert [len(r) for r in regions] == [len(datasets["train"].generate(i)[1]["labels"]) for i in range(4)]
    with pytest.raises(ValueError, match="split"):
        split_by_seed("validation", 3)
    with pytest.raises(ValueError, match="seed"):
        split_by_seed("train", 3, seed=5)
    with pytest.raises(TypeError, match="ShapesDataset"):
        caption_data([1, 2])
    with pytest.raises(ValueError, match="kind"):
        caption_data(datasets["val"], kind="image")


def test_training_vocabulary_covers_validation_captions():
    _, train = caption_data(split_by_seed("train", 60))
    _, val = caption_data(split_by_seed("val", 30))
    vocab = Vocabulary([c for refs in train for c in refs])
    assert set(vocab.words[4:]) <= set(grammar_words())
    assert all(vocab.unk_index not in vocab.encode(c, 14) for refs in val for c in refs)


# ---- 4. metrics: frozen reference values ---------------------------------------------------------------

# Papineni et al. 2002 (and NLTK's bleu_score docstrings, which reproduce the paper's examples).
HYP1 = "It is a guide to action which ensures that the military always obeys the commands of the party"
REF1 = "It is a guide to action that ensures that the military will forever heed Party commands"
REF2 = "It is the guiding principle which guarantees the military forces always being under the command of the Party"
REF3 = "It is the practical guide for the army always to heed the directions of the party"
HYP2 = "he read the book because he was interested in world history"
REF2A = "he was interested in world history because he read the book"


def test_bleu_papineni_and_nltk_documented_values():
    # Papineni §2.1: "the the the the the the the" vs the two cat references: modified precision 2/7.
    assert modified_precision("the the the the the the the",
                              ["The cat is on the mat", "There is a cat on the mat"], 1) == (2, 7)
    # Papineni §2.1 Example 1: candidate 1 has unigram precision 17/18 and bigram precision 10/17.
    assert modified_precision(HYP1, [REF1, REF2, REF3], 1) == (17, 18)
    assert modified_precision(HYP1, [REF1, REF2, REF3], 2) == (10, 17)
    # NLTK 3.10 docs: sentence_bleu(...hypothesis1) = 0.5045...; BLEU-2, -3, -4 = [0.7453..., 0.6240...,
    # 0.5045...]; full digits from NLTK 3.10.4 (on lower-cased tokens: the same value, checked).
    np.testing.assert_allclose(sentence_bleu(HYP1, [REF1, REF2, REF3]),
                               [0.9444444444444444, 0.7453559924999299, 0.6240726989348756, 0.5045666840058485],
                               rtol=1e-12)
    # NLTK docs: corpus_bleu([[ref1a, ref1b, ref1c], [ref2a]], [hyp1, hyp2]) = 0.5920...; BLEU-2 0.8242...
    scores = bleu([HYP1, HYP2], [[REF1, REF2, REF3], [REF2A]])
    np.testing.assert_allclose(scores[1], 0.8242803277698696, rtol=1e-12)
    np.testing.assert_allclose(scores[3], 0.5920778868801042, rtol=1e-12)
    # NLTK docs: hypothesis2 has no 3- or 4-gram match, so its BLEU-4 is 0.
    hyp2 = "It is to insure the troops forever hearing the activity guidebook that party direct"
    assert sentence_bleu(hyp2, [REF1, REF2, REF3])[3] == 0.0


SMALL_REFS = [["a small red circle left of a blue square", "a blue square right of a small red circle"],
              ["a large green star"],
              ["a yellow triangle above a small purple ellipse", "a small purple ellipse below a yellow triangle",
               "a yellow triangle above a cyan star"],
              ["a pink square"]]
SMALL_CANDS = ["a small red circle left of a blue square", "a green star",
               "a small purple ellipse above a yellow triangle", "a large pink circle"]


def test_bleu_and_cider_d_match_coco_caption_outputs():
    # pycocoevalcap 1.2 (coco-caption) on SMALL_CANDS / SMALL_REFS, run in a throwaway venv:
    # Bleu(4).compute_score -> [0.9166666665902777, 0.8291561975162989, 0.7546013420294909,
    # 0.7075666882077194] (its 1e-9/1e-15 guards shift the 10th digit); Cider().compute_score ->
    # 4.2013142760805335, per image [7.671947305567995, 2.8442318844128884, 5.015890001321108,
    # 1.2731879130201404].
    np.testing.assert_allclose(bleu(SMALL_CANDS, SMALL_REFS),
                               [0.9166666665902777, 0.8291561975162989, 0.7546013420294909, 0.7075666882077194],
                               rtol=1e-9)
    mean, per_image = cider_d(SMALL_CANDS, SMALL_REFS)
    np.testing.assert_allclose(mean, 4.2013142760805335, rtol=1e-12)
    np.testing.assert_allclose(per_image, [7.671947305567995, 2.8442318844128884, 5.015890001321108,
                                           1.2731879130201404], rtol=1e-12)


# The Meteor 1.5 jar shipped with pycocoevalcap 1.2, run as
# `java -jar meteor-1.5.jar h r -l en -m exact -p "0.9 3.0 0.5 0.5" -x 50000` (exact module only;
# α, β, γ of Lavie & Agarwal; δ = 0.5 weighs content and function words alike; a wide aligner beam).
METEOR_JAR = [
    ("a small red circle left of a blue square", "a blue square right of a small red circle", 0.8654513888888887),
    ("a small blue star", "a small blue star", 1.0),
    ("a red circle", "a large red circle", 0.6552706552706554),
    ("a a red circle", "a red a circle", 0.7890625),                 # NLTK's greedy aligner: 0.5
    ("the cat sat on the mat", "on the mat sat the cat", 0.9375),     # NLTK: 0.5
    # the jar's default beam (-x 40) finds 7 chunks here (0.4508739406779661); the best has 5
    ("circle circle circle circle red of of circle circle a",
     "circle a red circle of red a circle a circle red of", 0.5952065677966102),
    (HYP1.lower(), REF1.lower(), 0.7270233196159123),                 # NLTK docs (with stems, WordNet): 0.6944
]


@pytest.mark.parametrize("candidate, reference, expected", METEOR_JAR)
def test_meteor_exact_matches_the_meteor_jar(candidate, reference, expected):
    assert meteor_exact(candidate, [reference]) == pytest.approx(expected, abs=1e-12)


def _brute_force_chunks(cand, ref):
    """(matches, fewest chunks) over every one-to-one exact alignment with the most matches."""
    best = (0, 0)
    links = [(i, j) for i, w in enumerate(cand) for j, r in enumerate(ref) if w == r]
    for size in range(len(links), 0, -1):
        for subset in itertools.combinations(links, size):
            if len({i for i, _ in subset}) < size or len({j for _, j in subset}) < size:
                continue
            chunks = metrics._chunks(sorted(subset))
            if best[0] < size or chunks < best[1]:
                best = (size, chunks)
        if best[0]:
            return best
    return best


def test_meteor_alignment_is_optimal_by_brute_force():
    rng = np.random.default_rng(0)
    words = ["a", "red", "of", "circle"]
    for _ in range(150):
        cand = list(rng.choice(words, rng.integers(1, 7)))
        ref = list(rng.choice(words, rng.integers(1, 7)))
        pairs = meteor_alignment(cand, ref)
        assert all(cand[i] == ref[j] for i, j in pairs)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        expected = _brute_force_chunks(cand, ref)
        assert (len(pairs), metrics._chunks(pairs) if pairs else 0) == expected


def test_metric_identities():
    refs = ["a small red circle left of a blue square", "a blue square right of a small red circle"]
    assert sentence_bleu(refs[0], refs) == pytest.approx((1.0,) * 4)
    assert bleu(refs, [refs, refs]) == pytest.approx((1.0,) * 4)
    assert meteor_exact(refs[1], refs) == 1.0
    corpus_refs = [refs, ["a large green star"], ["a yellow triangle"]]
    exact, _ = cider_d([refs[0], "a large green star", "a yellow triangle"], corpus_refs)
    partial, _ = cider_d(["a small red circle", "a large green star", "a yellow triangle"], corpus_refs)
    wrong, _ = cider_d(["a yellow triangle", "a large green star", "a small red circle"], corpus_refs)
    assert exact > partial > wrong
    # brevity penalty: a correct but short candidate loses to the full sentence
    assert bleu(["a small red circle"], [refs])[0] < 1.0
    # clipping: repeating a matched word does not raise CIDEr-D
    more, _ = cider_d(["a red red red circle", "a large green star", "a yellow triangle"], corpus_refs)
    once, _ = cider_d(["a red circle", "a large green star", "a yellow triangle"], corpus_refs)
    assert more <= once
    # by hand: one match ("a"), P = R = 1/3, Fmean = 1/3, one chunk per match: penalty 0.5 -> 1/6
    assert meteor_exact("a red circle", ["a blue square"]) == pytest.approx(1 / 6)
    assert meteor_exact("green", ["a blue square"]) == 0.0
    assert bleu([""], [["a red circle"]]) == (0.0,) * 4


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="one entry per image"):
        bleu(["a"], [["a"], ["b"]])
    with pytest.raises(TypeError, match="references"):
        cider_d(["a red circle"], ["a red circle"])          # references must be lists per image
    with pytest.raises(TypeError, match="candidates"):
        bleu("a red circle", [["a red circle"]])
    with pytest.raises(TypeError, match="references"):
        meteor_exact("a red circle", "a red circle")
    with pytest.raises(ValueError, match="max_n"):
        bleu(["a"], [["a"]], max_n=0)
    with pytest.raises(ValueError, match="sigma"):
        cider_d(["a"], [["a"]], sigma=0)
    with pytest.raises(ValueError, match="empty"):
        bleu([], [])


# ---- 4b. metrics: live reference implementations, where installed ---------------------------------------

def _random_corpus(n=200, seed=0):
    """Grammar references of validation scenes and perturbed candidates (as in docs/captioning.md)."""
    rng = np.random.default_rng(seed)
    _, refs = caption_data(split_by_seed("val", n))
    words = grammar_words()
    cands = []
    for r in refs:
        base = r[rng.integers(len(r))].split()
        kind = rng.integers(4)
        if kind == 1:
            other = refs[rng.integers(len(refs))]
            base = other[rng.integers(len(other))].split()
        elif kind == 2:
            base = [w if rng.random() > 0.3 else words[rng.integers(len(words))] for w in base]
        elif kind == 3:
            base = list(rng.permutation(base)) + ["a"]
        cands.append(" ".join(base))
    return cands, refs


def test_bleu_and_cider_d_live_against_coco_caption():
    pytest.importorskip("pycocoevalcap.bleu.bleu")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    cands, refs = _random_corpus()
    gts, res = dict(enumerate(refs)), {i: [c] for i, c in enumerate(cands)}
    coco_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    np.testing.assert_allclose(bleu(cands, refs), coco_bleu, rtol=1e-9)
    coco_cider, coco_per_image = Cider().compute_score(gts, res)
    mean, per_image = cider_d(cands, refs)
    np.testing.assert_allclose(per_image, coco_per_image, rtol=1e-10, atol=1e-12)
    assert mean == pytest.approx(coco_cider, rel=1e-12)


def test_bleu_and_meteor_live_against_nltk():
    pytest.importorskip("nltk")
    from nltk.translate import meteor_score as nltk_meteor
    from nltk.translate.bleu_score import corpus_bleu
    from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu
    cands, refs = _random_corpus(seed=1)
    # NLTK counts a candidate shorter than n as one n-gram (denominator max(1, .)), Papineni and
    # coco-caption as none: on candidates of at least 4 words the two agree to rounding.
    long = [i for i, c in enumerate(cands) if len(c.split()) >= 4]
    assert len(long) > 100
    ours = bleu([cands[i] for i in long], [refs[i] for i in long])
    for n in range(1, 5):
        theirs = corpus_bleu([[r.split() for r in refs[i]] for i in long], [cands[i].split() for i in long],
                             weights=(1 / n,) * n)
        assert ours[n - 1] == pytest.approx(theirs, rel=1e-12)
    for c, rs in zip(cands[:50], refs[:50]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # NLTK warns when an n-gram order has no match
            theirs = nltk_sentence_bleu([r.split() for r in rs], c.split())
        assert sentence_bleu(c, rs)[3] == pytest.approx(theirs, abs=1e-12)

    class NoWordNet:                      # exact matches only: no synonyms ...
        def synsets(self, word):
            return []

    class Identity:                       # ... and no stems
        def stem(self, word):
            return word

    for c, rs in zip(cands, refs):
        theirs = nltk_meteor.meteor_score([r.split() for r in rs], c.split(), stemmer=Identity(), wordnet=NoWordNet())
        if c.split() in [r.split() for r in rs]:
            theirs = 1.0                  # Meteor 1.5's rule for identical sentences (NLTK lacks it)
        # Same matches; NLTK's greedy alignment may have more chunks, never fewer.
        assert meteor_exact(c, rs) >= theirs - 1e-12


def test_meteor_live_against_the_meteor_jar(tmp_path):
    module = pytest.importorskip("pycocoevalcap.bleu.bleu")
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    jar = os.path.join(os.path.dirname(os.path.dirname(module.__file__)), "meteor", "meteor-1.5.jar")
    cands, refs = _random_corpus(n=120, seed=2)
    count = max(len(r) for r in refs)
    (tmp_path / "h").write_text("\n".join(cands) + "\n")
    # plaintext multi-reference input: `count` lines per segment (the last reference repeated)
    (tmp_path / "r").write_text("\n".join(x for rs in refs for x in rs + [rs[-1]] * (count - len(rs))) + "\n")
    out = subprocess.run(["java", "-Xmx1G", "-jar", jar, str(tmp_path / "h"), str(tmp_path / "r"), "-l", "en",
                          "-m", "exact", "-p", "0.9 3.0 0.5 0.5", "-x", "50000", "-r", str(count)],
                         capture_output=True, text=True, timeout=120).stdout
    theirs = [float(line.split("\t")[1]) for line in out.splitlines() if line.startswith("Segment ")]
    assert len(theirs) == len(cands)
    np.testing.assert_allclose([meteor_exact(c, rs) for c, rs in zip(cands, refs)], theirs, atol=1e-12)


# ---- 5. decoding -------------------------------------------------------------------------------------

PAD, START, END = 0, 1, 2


def _toy_model(seed, vocab_size=5, sharpness=2.0):
    """A language model whose next-word distribution is a fixed random function of (image, prefix).

    The state is the (B, t + 1) array ``[image id, words so far...]``; ``<pad>`` and ``<start>``
    are never predicted.
    """
    def log_probs_of(row):
        logits = np.random.default_rng([seed, *row.tolist()]).normal(0, sharpness, vocab_size)
        logits[[PAD, START]] = -np.inf
        return logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()

    def step(tokens, state):
        if not np.all(tokens == START):           # <start> (first call only) is not part of the prefix
            state = np.concatenate([state, tokens[:, None]], axis=1)
        return np.stack([log_probs_of(row) for row in state]), state

    return step, log_probs_of


def _brute_force_best(log_probs_of, image, max_length, alpha, vocab_size=5):
    """The best sentence by sum / length ** alpha over every sentence the model can say."""
    words = [w for w in range(vocab_size) if w not in (PAD, START, END)]
    best = (-np.inf, None, None)
    for length in range(1, max_length + 1):
        for body in itertools.product(words, repeat=length - 1):
            for last in words + [END]:
                sentence = [*body, last]
                if last != END and length < max_length:
                    continue                      # unfinished sentences count only at max_length
                total = sum(log_probs_of(np.array([image, *sentence[:t]]))[sentence[t]] for t in range(length))
                key = total / length ** alpha
                if key > best[0]:
                    best = (key, sentence, total)
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_wide_beam_finds_the_brute_force_best(alpha):
    max_length, count = 4, 6
    step, log_probs_of = _toy_model(seed=3, sharpness=0.7)
    images = np.arange(count)[:, None]            # six images = six different distributions
    # at most 2^(L+1) - 1 = 31 hypotheses alive or finished: a beam of 32 prunes nothing
    tokens, scores = beam_search(step, images, START, END, max_length, beam_size=32, length_penalty=alpha)
    greedy, _ = greedy_decode(step, images, START, END, max_length)
    greedy_misses = 0
    for n in range(count):
        key, sentence, total = _brute_force_best(log_probs_of, n, max_length, alpha)
        expected = np.full(max_length, PAD)
        expected[:len(sentence)] = sentence
        np.testing.assert_array_equal(tokens[n], expected)
        assert scores[n] == pytest.approx(total, abs=1e-9)
        greedy_misses += not np.array_equal(greedy[n], expected)
    assert greedy_misses >= 1                     # the search had something to find


def test_greedy_can_miss_what_beam_search_finds():
    # First word: "x" (3) 0.6, "y" (4) 0.4. After "x" every word is equally likely (1/3 each);
    # after "y", <end> has 0.99. Greedy: x, then anything (best total 0.6 · 1/3 = 0.2);
    # beam 2 keeps "y" and finds "y <end>" (0.4 · 0.99 = 0.396).
    def step(tokens, state):
        out = np.full((len(tokens), 5), -np.inf)
        for b, (token, prev) in enumerate(zip(tokens, state)):
            if token == START:
                out[b, [3, 4]] = np.log([0.6, 0.4])
            elif token == 4:
                out[b, [END, 3, 4]] = np.log([0.99, 0.005, 0.005])
            else:
                out[b, [END, 3, 4]] = np.log(1 / 3)
        return out, tokens.copy()

    state = np.zeros(1, np.int64)
    greedy, greedy_score = greedy_decode(step, state, START, END, 3)
    beam, beam_score = beam_search(step, state, START, END, 3, beam_size=2)
    assert greedy[0, 0] == 3 and np.exp(greedy_score[0]) == pytest.approx(0.2)
    assert beam[0].tolist() == [4, END, PAD] and np.exp(beam_score[0]) == pytest.approx(0.396)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_size_one_is_greedy(alpha):
    for seed in range(5):
        step, _ = _toy_model(seed, vocab_size=6, sharpness=1.0)
        images = np.arange(4)[:, None]
        g_tokens, g_scores = greedy_decode(step, images, START, END, 6)
        b_tokens, b_scores = beam_search(step, images, START, END, 6, beam_size=1, length_penalty=alpha)
        np.testing.assert_array_equal(g_tokens, b_tokens)
        np.testing.assert_array_equal(g_scores, b_scores)


def test_beam_search_batch_equals_one_image_at_a_time_and_stays_finished():
    step, log_probs_of = _toy_model(seed=9, vocab_size=6, sharpness=1.5)
    images = np.arange(5)[:, None]
    tokens, scores = beam_search(step, images, START, END, 7, beam_size=3, length_penalty=0.5)
    for n in range(5):
        one, one_score = beam_search(step, images[n:n + 1], START, END, 7, beam_size=3, length_penalty=0.5)
        np.testing.assert_array_equal(one[0], tokens[n])
        assert one_score[0] == scores[n]
        row = tokens[n].tolist()
        length = row.index(END) + 1 if END in row else len(row)
        assert all(t == PAD for t in row[length:])                 # finished beams stay finished
        assert scores[n] == pytest.approx(sum(log_probs_of(np.array([n, *row[:t]]))[row[t]] for t in range(length)))


def test_beam_search_with_a_tuple_state_and_a_custom_select_state():
    hidden = np.random.default_rng(0).normal(size=(2, 4))       # (h, c)-like state: a tuple of (N, H)

    def step(tokens, state):
        h, c = state
        logits = np.stack([h.sum(1), c.sum(1), -np.abs(h[:, 0]), h[:, 1], c[:, 2]], axis=1) + 0.1 * tokens[:, None]
        logits[:, [PAD, START]] = -np.inf
        log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - logits.max(1, keepdims=True)
        return log_probs, (np.tanh(h + tokens[:, None]), c * 0.9)

    state = (hidden, hidden[::-1].copy())
    default = beam_search(step, state, START, END, 5, beam_size=3)
    calls = []

    def select(s, indices):
        calls.append(np.asarray(indices).copy())
        return tuple(x[indices] for x in s)

    custom = beam_search(step, state, START, END, 5, beam_size=3, select_state=select)
    np.testing.assert_array_equal(default[0], custom[0])
    assert calls[0].tolist() == [0, 0, 0, 1, 1, 1]               # each image copied to its 3 beams
    assert decode.default_select_state((np.arange(3), np.arange(3) * 2), [2, 0])[1].tolist() == [4, 0]


def test_decode_bad_input():
    step, _ = _toy_model(0)
    images = np.arange(2)[:, None]
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(step, images, START, END, 4, beam_size=0)
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(step, images, START, END, 0)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(step, images, START, END, 4, length_penalty=-1)
    with pytest.raises(ValueError, match="end_token"):
        greedy_decode(step, images, START, -1, 4)
    with pytest.raises(ValueError, match="log_probs"):
        greedy_decode(lambda t, s: (np.zeros((len(t) + 1, 5)), s), images, START, END, 4)
    with pytest.raises(ValueError, match="NaN"):
        greedy_decode(lambda t, s: (np.full((len(t), 5), np.nan), s), images, START, END, 4)
    with pytest.raises(ValueError, match="state"):
        greedy_decode(step, (), START, END, 4)
    with pytest.raises(TypeError, match="select_state"):
        beam_search(step, images, START, END, 4, select_state=None)
