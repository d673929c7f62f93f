"""Words ↔ integer ids for a captioning model, and the train/val/test split of the shapes scenes.

A language model (CS231n lecture 10) reads and writes *token ids*: an embedding table has one
row per word, and the output layer one score per word. ``Vocabulary`` is that mapping, built from
the training captions, plus four special tokens every captioner needs:

* ``<pad>`` = 0 — fills a caption up to the batch's fixed length; the loss ignores it;
* ``<start>`` — the first input word: "now begin the sentence" (the image is the only context);
* ``<end>`` — the word the model must learn to say when the sentence is over; decoding stops there;
* ``<unk>`` — any word not seen in training (a real vocabulary drops rare words; ``min_count``).

``encode("a red circle", 8)`` gives ``[<start>, a, red, circle, <end>, <pad>, <pad>, <pad>]``;
the captioner's input is the array without its last column and its target without its first
(teacher forcing). ``to_dict``/``from_dict`` store the word list as plain JSON-able data, so a
trained model is its weights (``.npz``) plus this dict (``.json``) — no pickle.

**Split by scene seed.** A ``ShapesDataset`` item is a pure function of ``(seed, index)``, so the
three splits are three seeds (``SPLIT_SEEDS``): training scenes come from dataset seed 0,
validation from seed 1, test from seed 2. Their scenes are independent draws; no image of one
split is in another (continuous random positions, colours and textures).
"""
from __future__ import annotations

import numbers
from collections import Counter

import numpy as np

from ..data.shapes import ShapesDataset
from .grammar import region_captions, scene_captions

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIAL_TOKENS = (PAD, START, END, UNK)         # ids 0, 1, 2, 3

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def tokenize(caption):
    """A caption (str) -> its words: lower-cased, split on whitespace."""
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a str, got {type(caption).__name__}")
    return caption.lower().split()


class Vocabulary:
    """The special tokens, then every word seen at least ``min_count`` times, sorted alphabetically.

    Args:
        captions: the (training) captions to collect words from, an iterable of strings.
        min_count: words seen fewer times become ``<unk>``.

    Attributes: ``words`` (id -> word), ``pad_index`` = 0, ``start_index``, ``end_index``,
    ``unk_index``; ``len(vocab)`` is V, the size of the embedding table and of the output layer.
    """

    def __init__(self, captions=(), min_count=1):
        if isinstance(captions, str):
            raise TypeError("captions must be an iterable of captions, got a single str; wrap it in a list")
        if not isinstance(min_count, numbers.Integral) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        counts = Counter(word for caption in captions for word in tokenize(caption))
        # Alphabetical (not by frequency): the same captions always give the same ids.
        kept = sorted(w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS)
        self._set_words(list(SPECIAL_TOKENS) + kept)

    def _set_words(self, words):
        self.words = list(words)
        self.index_of = {w: i for i, w in enumerate(self.words)}
        self.pad_index, self.start_index, self.end_index, self.unk_index = (self.index_of[t] for t in SPECIAL_TOKENS)

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index_of

    def __repr__(self):
        return f"Vocabulary({len(self)} tokens: {' '.join(self.words[:12])}{' ...' if len(self) > 12 else ''})"

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.words == other.words

    # ---- captions <-> ids --------------------------------------------------------------------

    def encode(self, caption, max_length, truncate=False):
        """A caption -> (max_length,) int64: ``<start>``, word ids, ``<end>``, then ``<pad>``.

        Unknown words become ``<unk>``. A caption with more than ``max_length - 2`` words raises
        ValueError, or with ``truncate=True`` keeps its first words (``<end>`` still closes it).
        """
        if not isinstance(max_length, numbers.Integral) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2 (room for <start> and <end>), got {max_length!r}")
        words = tokenize(caption)
        if len(words) > max_length - 2:
            if not truncate:
                raise ValueError(f"caption {caption!r} has {len(words)} words; max_length={max_length} holds "
                                 f"{max_length - 2} (pass truncate=True to cut it)")
            words = words[:max_length - 2]
        ids = np.full(max_length, self.pad_index, dtype=np.int64)
        ids[0] = self.start_index
        ids[1:len(words) + 1] = [self.index_of.get(w, self.unk_index) for w in words]
        ids[len(words) + 1] = self.end_index
        return ids

    def encode_batch(self, captions, max_length, truncate=False):
        """A list of N captions -> (N, max_length) int64 (see ``encode``)."""
        if isinstance(captions, str):
            raise TypeError("captions must be a list of captions, got a single str; use encode()")
        rows = [self.encode(caption, max_length, truncate) for caption in captions]
        return np.stack(rows) if rows else np.zeros((0, max_length), dtype=np.int64)

    def decode(self, ids):
        """Token ids (a 1-D sequence) -> the caption: words up to the first ``<end>``.

        A leading ``<start>`` is skipped and ``<pad>`` tokens are dropped (a generated caption
        that never said ``<end>`` ends where the ids end). Unknown ids raise ValueError.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1 or not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"ids must be a 1-D sequence of ints, got shape {ids.shape} dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), got values from {ids.min()} to {ids.max()}")
        words = []
        for position, i in enumerate(ids.tolist()):
            if i == self.end_index:
                break
            if i == self.pad_index or (i == self.start_index and position == 0):
                continue
            words.append(self.words[i])
        return " ".join(words)

    def decode_batch(self, ids):
        """(N, L) token ids -> N captions."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (N, L), got shape {ids.shape}")
        return [self.decode(row) for row in ids]

    # ---- saving ------------------------------------------------------------------------------

    def to_dict(self):
        """Plain JSON-able data: ``{"words": [...], "special_tokens": [...]}``."""
        return {"words": list(self.words), "special_tokens": list(SPECIAL_TOKENS)}

    @classmethod
    def from_dict(cls, data):
        """The inverse of ``to_dict`` (checks that it is a vocabulary with the same special tokens)."""
        if not isinstance(data, dict) or "words" not in data:
            raise ValueError("data must be a dict made by Vocabulary.to_dict() (with a 'words' list)")
        words = data["words"]
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise ValueError("data['words'] must be a list of str")
        if list(words[:len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS) or len(set(words)) != len(words):
            raise ValueError(f"data['words'] must start with {SPECIAL_TOKENS} and hold no duplicates")
        vocab = cls.__new__(cls)
        vocab._set_words(words)
        return vocab


# ---- the split and the (images, captions) lists --------------------------------------------------

def split_by_seed(split, n, size=64, **kwargs):
    """The ``ShapesDataset`` of a split: ``"train"`` = seed 0, ``"val"`` = seed 1, ``"test"`` = seed 2.

    ``n`` scenes of side ``size``; other keyword arguments go to ``ShapesDataset`` (e.g.
    ``max_objects``). The mode is always "scene".
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {tuple(SPLIT_SEEDS)}, got {split!r}")
    if "seed" in kwargs or "mode" in kwargs:
        raise ValueError("split_by_seed chooses seed and mode itself; do not pass them")
    return ShapesDataset(n, size, "scene", seed=SPLIT_SEEDS[split], **kwargs)


def caption_data(dataset, kind="scene", max_captions=5):
    """(images, captions) of a ``ShapesDataset``, made from its untransformed items.

    Returns ``images`` (N, 3, H, W) float32 and ``captions``, a list of N lists of strings:
    ``kind="scene"`` — each image's reference captions (``scene_captions``, up to
    ``max_captions``); ``kind="region"`` — one caption per object, in the order of the item's
    ``boxes`` (``region_captions``; the boxes are ``dataset.generate(i)[1]["boxes"]``).
    """
    if not isinstance(dataset, ShapesDataset):
        raise TypeError(f"dataset must be a ShapesDataset, got {type(dataset).__name__}")
    if kind not in ("scene", "region"):
        raise ValueError(f"kind must be 'scene' or 'region', got {kind!r}")
    images, captions = [], []
    for i in range(len(dataset)):
        # generate(), not [i]: captions describe the generated scene (sizes are relative to it).
        image, target = dataset.generate(i)
        images.append(image)
        if kind == "scene":
            captions.append(scene_captions(target, dataset.size, max_captions, dataset.classes))
        else:
            captions.append(region_captions(target, dataset.size, dataset.classes))
    height, width = dataset.size
    return (np.stack(images) if images else np.zeros((0, 3, height, width), np.float32)), captions


def shapes_vocabulary():
    """The vocabulary of the shapes grammar: the 4 special tokens + every word ``grammar_words()``
    lists (25 tokens). The committed captioners were trained with it, so it is fixed by the grammar
    rather than by whichever captions a training set happened to contain."""
    from .grammar import grammar_words
    return Vocabulary(grammar_words())
