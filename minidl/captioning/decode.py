"""Turning a language model into sentences: greedy decoding and beam search.

At training time a captioner is fed the true previous word (teacher forcing); at test time
(CS231n lecture 10) it must feed back its *own* words, one step at a time, until it says
``<end>``. Which word to feed back is the decoding strategy:

* **greedy** — the most probable word at each step. Cheap, but a word that looks best now can
  lead into a sentence that is worse overall ("a" → nothing good follows), and it never recovers.
* **beam search** — keep the ``beam_size`` best *partial sentences*; extend each by every word,
  keep the best ``beam_size`` of all those, repeat. ``beam_size=1`` is greedy; a beam as wide
  as the number of possible sentences is exhaustive search.

Both are generic over the model through one function::

    step(tokens (B,) int64, state) -> (log_probs (B, V) float array, new_state)

the log-probabilities of the next word for B partial sentences whose last word is ``tokens``
(``state`` carries the rest: an RNN's hidden state, or the prefix itself). Beam search runs all
beams of all images as one batch, B = N · beam_size, row ``n · beam_size + b`` = beam b of image
n; after each step it reorders the state rows to follow the surviving beams with
``select_state(state, indices)`` (default: index axis 0 of the array, or of every array of a
tuple/list — e.g. ``(h, c)`` of an LSTM, each (B, H)).

Both return ``tokens`` (N, max_length) int64 — the words after ``<start>``, then ``<end>``,
then ``pad_token`` — and ``scores`` (N,) float64, the sum of the log-probabilities of the
returned words (``<end>`` included), as the model assigns them.
"""
from __future__ import annotations

import numbers

import numpy as np


def default_select_state(state, indices):
    """Rows ``indices`` of a state: an array, or a tuple/list of arrays (each indexed on axis 0)."""
    if isinstance(state, (tuple, list)):
        return type(state)(s[indices] for s in state)
    return state[indices]


def _batch_size(state):
    """N: the length of axis 0 of the state (of its first array when it is a tuple/list)."""
    first = state
    while isinstance(first, (tuple, list)) and first:
        first = first[0]
    if not hasattr(first, "shape") or len(first.shape) == 0:
        raise ValueError("state must be an array or a tuple/list of arrays with the batch on axis 0")
    return int(first.shape[0])


def _check_tokens(start_token, end_token, pad_token, max_length):
    for name, value in (("start_token", start_token), ("end_token", end_token), ("pad_token", pad_token)):
        if not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if not isinstance(max_length, numbers.Integral) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")


def _log_probs(step, tokens, state, rows, end_token):
    """Call ``step`` and check its answer: (rows, V) finite-or-minus-inf log-probabilities."""
    log_probs, state = step(tokens, state)
    log_probs = np.array(log_probs, dtype=np.float64)       # a copy: beam search writes into it
    if log_probs.ndim != 2 or log_probs.shape[0] != rows or log_probs.shape[1] <= end_token:
        raise ValueError(f"step must return log_probs of shape ({rows}, V) with V > end_token={end_token}, "
                         f"got {log_probs.shape}")
    if np.isnan(log_probs).any() or (log_probs == np.inf).any():
        raise ValueError("step returned NaN or +inf log-probabilities")
    return log_probs, state


def greedy_decode(step, state, start_token, end_token, max_length, pad_token=0):
    """The most probable word at each step, for N sentences at once.

    ``state``: the initial state of N sentences (batch on axis 0). A sentence is finished when it
    says ``end_token``; later steps still run it (the batch stays whole) but its words and scores
    are ignored. Stops early once all are finished. Returns ``(tokens (N, max_length), scores (N,))``.
    """
    _check_tokens(start_token, end_token, pad_token, max_length)
    n = _batch_size(state)
    tokens = np.full(n, start_token, dtype=np.int64)
    out = np.full((n, max_length), pad_token, dtype=np.int64)
    scores = np.zeros(n)
    finished = np.zeros(n, dtype=bool)
    for t in range(max_length):
        log_probs, state = _log_probs(step, tokens, state, n, end_token)
        best = np.argmax(log_probs, axis=1)          # ties: the lowest id (as beam search)
        alive = ~finished
        out[alive, t] = best[alive]
        scores[alive] += log_probs[alive, best[alive]]
        finished |= best == end_token
        if finished.all():
            break
        tokens = best
    return out, scores


def beam_search(step, state, start_token, end_token, max_length, beam_size=3, length_penalty=0.0,
                select_state=default_select_state, pad_token=0):
    """The ``beam_size`` best partial sentences per image, extended word by word.

    Args:
        step: ``step(tokens (B,), state) -> (log_probs (B, V), new_state)``, see the module docstring.
        state: initial state of the N images (batch on axis 0); each image's row is copied to its
            ``beam_size`` beams with ``select_state``.
        start_token, end_token: ids of ``<start>`` (first input) and ``<end>`` (finishes a sentence).
        max_length: most words generated (``<end>`` included); a sentence that has not ended by
            then is ranked as it is.
        beam_size: how many partial sentences each image keeps.
        length_penalty: α of the length normalisation. Beams are *ranked* by
            ``sum of log-probs / length ** α``, length = words generated so far (``<end>``
            included). α = 0 ranks by total log-probability, which favours short sentences (each
            word multiplies in a probability < 1); α = 1 ranks by mean log-probability per word.
            The same key ranks finished and unfinished beams at every step and picks the answer.
        select_state: ``select_state(state, indices) -> state`` keeping rows ``indices`` in that order.
        pad_token: written after ``<end>``.

    A finished beam stays finished: its only continuation is itself (score and length unchanged),
    which competes with the other beams' extensions for a place at each step.

    Returns ``(tokens (N, max_length) int64, scores (N,) float64)`` of each image's best beam;
    ``scores`` = its total log-probability (not normalised).
    """
    _check_tokens(start_token, end_token, pad_token, max_length)
    if not isinstance(beam_size, numbers.Integral) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    if not isinstance(length_penalty, numbers.Real) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a number >= 0, got {length_penalty!r}")
    if not callable(select_state):
        raise TypeError("select_state must be callable: select_state(state, indices) -> state")
    n, k = _batch_size(state), int(beam_size)
    state = select_state(state, np.repeat(np.arange(n), k))      # row n·k + b = beam b of image n
    tokens = np.full(n * k, start_token, dtype=np.int64)
    history = np.full((n, k, max_length), pad_token, dtype=np.int64)
    # All beams start identical: only beam 0 may expand at the first step, or the k beams would
    # be k copies of the same sentence.
    scores = np.full((n, k), -np.inf)
    scores[:, 0] = 0.0
    lengths = np.zeros((n, k), dtype=np.int64)
    finished = np.zeros((n, k), dtype=bool)

    def key(total, length):
        # Normalised ranking score; length 0 only for the not-yet-started beams (score 0 or -inf).
        return total / np.maximum(length, 1) ** length_penalty

    for t in range(max_length):
        log_probs, state = _log_probs(step, tokens, state, n * k, end_token)
        vocab = log_probs.shape[1]
        log_probs = log_probs.reshape(n, k, vocab)
        # A finished beam's one continuation: "stay" (+0, no new word), put in column end_token.
        log_probs[finished] = -np.inf
        log_probs[finished, end_token] = 0.0
        total = scores[:, :, None] + log_probs                          # (N, k, V)
        new_length = lengths[:, :, None] + (~finished)[:, :, None]      # (N, k, 1)
        ranking = key(total, new_length).reshape(n, k * vocab)
        # The k best of the k·V extensions (stable: ties go to the lower beam, then lower id).
        choice = np.argsort(-ranking, axis=1, kind="stable")[:, :k]     # (N, k) flat indices
        parent, word = choice // vocab, choice % vocab
        rows = np.arange(n)[:, None]
        was_finished = finished[rows, parent]
        scores = total[rows, parent, word]
        lengths = lengths[rows, parent] + ~was_finished
        history = history[rows, parent]
        history[:, :, t] = np.where(was_finished, pad_token, word)
        finished = was_finished | (word == end_token)
        state = select_state(state, (rows * k + parent).reshape(-1))
        tokens = word.reshape(-1)
        if finished.all():
            break
    best = np.argmax(key(scores, lengths), axis=1)                     # ties: the lower beam
    return history[np.arange(n), best], scores[np.arange(n), best]
