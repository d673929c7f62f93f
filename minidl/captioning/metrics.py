"""Caption metrics: BLEU, CIDEr-D and exact-match METEOR — how a generated sentence is scored.

A caption cannot be graded like a class label: many sentences are right. The metrics of
CS231n lecture 10 (and of the COCO captioning leaderboard) compare a *candidate* caption with
several human *references* by the words and word sequences (n-grams) they share:

* **BLEU** (Papineni et al. 2002) — precision of n-grams, n = 1..4, each candidate n-gram
  counted at most as often as it appears in one reference ("clipping": "the the the" does not
  match three times), over the whole corpus, with a *brevity penalty* because precision alone
  rewards saying little.
* **CIDEr-D** (Vedantam et al. 2015) — cosine similarity of TF-IDF-weighted n-gram vectors:
  n-grams that every image's references use ("a", "of") weigh little, distinctive ones
  ("purple star") a lot. The "-D" adds a length penalty and clipping against gaming.
* **METEOR** (Banerjee & Lavie 2005; Lavie & Agarwal 2007) — aligns candidate and reference
  words one to one, mixes precision and recall (recall weighs more), and penalises alignments
  that break into many chunks (word order). DenseCap (lecture 8's dense captioning) thresholds
  METEOR in its mAP. **Here only the exact-match module is implemented** — no stemming,
  synonyms or paraphrases; the shapes grammar's words need none.

Tokens: a caption is a string, lower-cased and split on whitespace, or an already-split list of
tokens (lower-cased too). Checked against NLTK 3.10 and coco-caption (``pycocoevalcap`` 1.2):
see ``docs/captioning.md`` and ``tests/test_captioning_text.py``.
"""
from __future__ import annotations

import math
import numbers
from collections import Counter

import numpy as np


# ---- tokens and n-grams ---------------------------------------------------------------------------

def _tokens(caption, name):
    """A caption (str or list of str) -> list of lower-case tokens."""
    if isinstance(caption, str):
        return caption.lower().split()
    if isinstance(caption, (list, tuple)) and all(isinstance(w, str) for w in caption):
        return [w.lower() for w in caption]
    raise TypeError(f"{name} must be a caption (a str or a list of str tokens), got {type(caption).__name__}")


def _reference_tokens(references, name):
    """One image's references (a non-empty list of captions) -> list of token lists."""
    if isinstance(references, str) or not isinstance(references, (list, tuple)) or not references:
        raise TypeError(f"{name} must be a non-empty list of reference captions, got {references!r:.60}")
    return [_tokens(r, name) for r in references]


def _corpus(candidates, references):
    """Check a corpus (N candidates, N lists of references) and tokenize it."""
    if isinstance(candidates, str) or not isinstance(candidates, (list, tuple)):
        raise TypeError("candidates must be a list of captions (one per image)")
    if isinstance(references, str) or not isinstance(references, (list, tuple)):
        raise TypeError("references must be a list with one list of reference captions per image")
    if len(candidates) != len(references):
        raise ValueError(f"candidates and references must have one entry per image, got "
                         f"{len(candidates)} and {len(references)}")
    if not candidates:
        raise ValueError("candidates must not be empty")
    return ([_tokens(c, f"candidates[{i}]") for i, c in enumerate(candidates)],
            [_reference_tokens(r, f"references[{i}]") for i, r in enumerate(references)])


def ngrams(tokens, n):
    """Counter of the n-grams (tuples of n consecutive tokens) of a token list."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _check_max_n(max_n):
    if not isinstance(max_n, numbers.Integral) or max_n < 1:
        raise ValueError(f"max_n must be a positive int, got {max_n!r}")


# ---- BLEU ----------------------------------------------------------------------------------------------

def modified_precision(candidate, references, n):
    """Papineni's clipped n-gram counts of one candidate: ``(matched, total)``.

    Each candidate n-gram counts at most as often as it appears in any *single* reference
    (``min(count, max over references of count)``). Papineni's example: "the the the the the the
    the" against "the cat is on the mat" / "there is a cat on the mat" gives (2, 7).
    """
    _check_max_n(n)
    cand = _tokens(candidate, "candidate")
    counts = ngrams(cand, n)
    most = Counter()                              # the most times each n-gram appears in one reference
    for ref in _reference_tokens(references, "references"):
        for gram, c in ngrams(ref, n).items():
            most[gram] = max(most[gram], c)
    matched = sum(min(c, most[gram]) for gram, c in counts.items())
    return matched, max(0, len(cand) - n + 1)


def _closest_length(candidate_length, reference_lengths):
    """The reference length closest to the candidate's (ties: the shorter), as Papineni's r."""
    return min(reference_lengths, key=lambda r: (abs(r - candidate_length), r))


def bleu(candidates, references, max_n=4):
    """Corpus BLEU-1 .. BLEU-``max_n`` of N candidates against N lists of references.

    Papineni's corpus BLEU: clipped n-gram matches and candidate n-gram totals are summed over all
    sentences first, ``p_n = Σ matched_n / Σ total_n``; ``c`` = total candidate length, ``r`` = sum
    over sentences of the reference length closest to the candidate's; brevity penalty
    ``BP = 1 if c > r else exp(1 - r / c)``; ``BLEU-n = BP · (p_1 · … · p_n) ** (1 / n)`` (the
    geometric mean with uniform weights). A zero precision makes the score 0, as in the paper and
    NLTK. coco-caption instead adds 1e-15 to the matches and 1e-9 to the totals, so where this
    returns 0 it returns a small positive number (up to 1e-6 ** (1/4) ≈ 0.03 for a *sentence*
    shorter than n words); the two agree to ~1e-12 on corpora where every p_n > 0.

    Returns a tuple of ``max_n`` floats (BLEU-1, BLEU-2, ...).
    """
    _check_max_n(max_n)
    cands, refs = _corpus(candidates, references)
    matched, total = np.zeros(max_n), np.zeros(max_n)
    c = r = 0
    for cand, ref_list in zip(cands, refs):
        for n in range(1, max_n + 1):
            m, t = modified_precision(cand, ref_list, n)
            matched[n - 1] += m
            total[n - 1] += t
        c += len(cand)
        r += _closest_length(len(cand), [len(ref) for ref in ref_list])
    if c == 0:
        return (0.0,) * max_n                     # nothing said: BP = exp(-inf) = 0
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    scores, log_sum = [], 0.0
    for n in range(max_n):
        if matched[n] == 0:                       # log 0: this and every longer BLEU are 0
            scores += [0.0] * (max_n - n)
            break
        log_sum += math.log(matched[n] / total[n])
        scores.append(brevity * math.exp(log_sum / (n + 1)))
    return tuple(scores)


def sentence_bleu(candidate, references, max_n=4):
    """BLEU-1 .. BLEU-``max_n`` of one candidate: corpus BLEU of a one-sentence corpus.

    Sentence BLEU is noisy (one missing 4-gram makes BLEU-4 zero); report corpus BLEU.
    """
    return bleu([candidate], [references], max_n)


# ---- CIDEr-D ---------------------------------------------------------------------------------------------

def cider_d(candidates, references, sigma=6.0, max_n=4):
    """CIDEr-D of N candidates against N lists of references -> ``(mean, per_image (N,) array)``.

    As coco-caption computes it (``pycocoevalcap.cider``, Vedantam et al. 2015):

    * n-gram vectors for n = 1..4, weighted by TF-IDF: ``g(w) = count(w) · (log N - log max(1, df(w)))``
      where ``df(w)`` = the number of *images* whose references contain ``w`` — the document
      frequency over the reference sets of the corpus being evaluated (so CIDEr-D needs a corpus:
      with N = 1 every weight is 0);
    * for each reference j and each n: ``Σ_w min(g_c(w), g_j(w)) · g_j(w) / (|g_c| |g_j|)`` — the
      cosine with the candidate's weights clipped by the reference's (saying a word twice as often
      gains nothing) — times the length penalty ``exp(-(l_c - l_j)² / (2 σ²))``, σ = 6, ``l`` in words;
    * averaged over n and over the references, times 10.

    The corpus score is the mean over images.
    """
    _check_max_n(max_n)
    cands, refs = _corpus(candidates, references)
    if not (isinstance(sigma, numbers.Real) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")

    def grams(tokens):
        return [ngrams(tokens, n) for n in range(1, max_n + 1)]

    ref_grams = [[grams(ref) for ref in ref_list] for ref_list in refs]
    # Document frequency: in how many images' reference *sets* each n-gram occurs.
    df = Counter()
    for image_refs in ref_grams:
        df.update({gram for ref in image_refs for per_n in ref for gram in per_n})
    log_n = math.log(len(cands))

    def tfidf(per_n):
        """n-gram counts -> (weights per n, vector norm per n)."""
        vectors = [{g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in counts.items()} for counts in per_n]
        return vectors, [math.sqrt(sum(v * v for v in vec.values())) for vec in vectors]

    scores = np.zeros(len(cands))
    for i, (cand, image_refs) in enumerate(zip(cands, ref_grams)):
        vec_c, norm_c = tfidf(grams(cand))
        total = 0.0
        for ref_tokens, ref in zip(refs[i], image_refs):
            vec_r, norm_r = tfidf(ref)
            penalty = math.exp(-((len(cand) - len(ref_tokens)) ** 2) / (2 * sigma ** 2))
            for n in range(max_n):
                dot = sum(min(w, vec_r[n].get(g, 0.0)) * vec_r[n].get(g, 0.0) for g, w in vec_c[n].items())
                if norm_c[n] > 0 and norm_r[n] > 0:
                    total += penalty * dot / (norm_c[n] * norm_r[n])
        scores[i] = 10.0 * total / (max_n * len(image_refs))
    return float(scores.mean()), scores


# ---- METEOR, exact matches only ---------------------------------------------------------------------------

METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA = 0.9, 3.0, 0.5


def _chunks(pairs):
    """Chunks of an alignment sorted by candidate position: runs adjacent in both sentences."""
    return sum(1 for k, (i, j) in enumerate(pairs) if k == 0 or (i, j) != (pairs[k - 1][0] + 1, pairs[k - 1][1] + 1))


def meteor_alignment(candidate, reference):
    """The exact-match alignment METEOR scores: a list of (candidate index, reference index) pairs.

    Each word is matched at most once, to an identical word. Among the alignments with the most
    matches (``Σ_w min(count_c(w), count_r(w))``), the one with the fewest chunks, then the
    smallest ``Σ |i - j|`` — the resolution Meteor 1.5 uses (Denkowski & Lavie 2014). Found by a
    depth-first search over the candidate's words with pruning (captions are short).
    """
    cand, ref = _tokens(candidate, "candidate"), _tokens(reference, "reference")
    positions = {w: [j for j, r in enumerate(ref) if r == w] for w in set(cand)}
    # Every word w must be matched exactly min(count_c, count_r) times: track what is still needed
    # and how many occurrences of w are left in the candidate, to know when matching is forced.
    needed = {w: min(cand.count(w), len(positions[w])) for w in positions}
    left = Counter(cand)
    used = [False] * len(ref)
    best = [None, (math.inf, math.inf)]          # pairs, (chunks, distance)
    pairs = []

    def search(i, chunks, distance):
        if (chunks, distance) >= best[1]:
            return     # both only grow as words are added: this branch cannot beat the best so far
        if i == len(cand):
            best[0], best[1] = list(pairs), (chunks, distance)
            return
        w = cand[i]
        left[w] -= 1
        if needed[w] > 0:
            # Try the reference position that extends the current chunk first: a good alignment
            # found early prunes the rest.
            options = sorted((j for j in positions[w] if not used[j]),
                             key=lambda j: (not (pairs and pairs[-1] == (i - 1, j - 1)), abs(i - j)))
            for j in options:
                new_chunk = not (pairs and pairs[-1] == (i - 1, j - 1))
                used[j] = True
                needed[w] -= 1
                pairs.append((i, j))
                search(i + 1, chunks + new_chunk, distance + abs(i - j))
                pairs.pop()
                needed[w] += 1
                used[j] = False
        if left[w] >= needed[w]:                  # leaving word i unmatched still allows the maximum
            search(i + 1, chunks, distance)
        left[w] += 1

    search(0, 0, 0)
    return best[0]


def meteor_exact(candidate, references, alpha=METEOR_ALPHA, beta=METEOR_BETA, gamma=METEOR_GAMMA):
    """METEOR of one candidate with the **exact-match module only**, best over the references.

    For each reference: align (``meteor_alignment``), ``m`` matches, ``P = m / len(candidate)``,
    ``R = m / len(reference)``, ``Fmean = P·R / (α·P + (1 - α)·R)`` (α = 0.9: recall weighs 9×),
    fragmentation penalty ``γ · (chunks / m) ** β`` (γ = 0.5, β = 3), score ``Fmean · (1 - penalty)``;
    0 without a match. As in Meteor 1.5, a candidate identical to the reference scores exactly 1
    (the penalty formula alone would give ``1 - γ / m ** β``, e.g. 0.992 for four words, which is
    what NLTK's ``meteor_score`` returns). The original METEOR (Lavie & Agarwal 2007) also matches Porter stems and
    WordNet synonyms, and Meteor 1.5 (used by DenseCap) adds paraphrases and other parameters:
    none of that is here, so scores are comparable to each other, not to published METEOR values.
    """
    cand = _tokens(candidate, "candidate")
    best = 0.0
    for ref in _reference_tokens(references, "references"):
        pairs = meteor_alignment(cand, ref)
        m = len(pairs)
        if m == 0:
            continue
        precision, recall = m / len(cand), m / len(ref)
        fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
        chunks = _chunks(pairs)
        # Meteor 1.5's one exception: a candidate identical to the reference (every word of both
        # matched, in one chunk) has no fragmentation at all, so it scores exactly 1.
        identical = m == len(cand) == len(ref) and chunks == 1
        penalty = 0.0 if identical else gamma * (chunks / m) ** beta
        best = max(best, fmean * (1 - penalty))
    return best
