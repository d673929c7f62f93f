"""minidl.captioning — describing images and regions with words (CS231n lectures 8 and 10).

* ``grammar.py``: true captions of generated shapes scenes ("a small red circle left of a blue square")
* ``vocab.py``: ``Vocabulary`` (words <-> ids, special tokens), the split by scene seed, (images, captions)
* ``metrics.py``: BLEU, CIDEr-D and exact-match METEOR, in plain Python
* ``decode.py``: greedy decoding and beam search over any ``step(tokens, state)`` model
* ``captioner.py``: ``CaptionDecoder`` (feature -> LSTM -> words) and ``ImageCaptioner`` (CNN + decoder)
* ``dense.py``: ``DenseCaptioner`` — Fast R-CNN whose region codes, beside each box's pixels, feed a ``CaptionDecoder``
* ``densecap_eval.py``: DenseCap's mAP over box IoU × METEOR thresholds
"""
from . import decode, grammar, metrics, vocab  # noqa: F401
from .decode import beam_search, greedy_decode  # noqa: F401
from .grammar import describe_object, region_captions, scene_captions  # noqa: F401
from .metrics import bleu, cider_d, meteor_exact, sentence_bleu  # noqa: F401
from .vocab import SPLIT_SEEDS, Vocabulary, caption_data, shapes_vocabulary, split_by_seed  # noqa: F401
from .captioner import CaptionDecoder, ImageCaptioner  # noqa: F401
from .dense import DenseCaptioner  # noqa: F401
from .densecap_eval import dense_captioning_map  # noqa: F401
