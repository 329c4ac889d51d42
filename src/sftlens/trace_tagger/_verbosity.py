"""Verbosity metrics of one trace, computed from token arrays with numpy (no per-token loop).

Definitions (tokens are spaCy tokens that are not white space; words are tokens that are not
punctuation either; rates are per 1,000 tokens):

- ``tokens``, ``words``, ``sentences`` (sentences holding at least one word),
  ``words_per_sentence``.
- ``repeated_4gram_ratio``: share of word 4-grams (lower case) that repeat an earlier 4-gram.
- ``distinct_1`` / ``distinct_2``: distinct word unigrams / bigrams over their total.
- ``compression_ratio``: UTF-8 bytes over zlib-compressed bytes (higher = more redundant).
- ``filler_per_1k``: discourse fillers ("okay", "alright", "basically", "anyway", "um", ...).
- ``hedge_per_1k``: hedge words ("maybe", "perhaps", "probably", "might", "guess", ...).
- ``wait_per_1k``: "wait"-style interjections ("wait", "hmm", "oh", "oops", "hold on").
- ``restatement_share``: share of sentences with at least 3 content tokens (words that are not
  stop words; numbers count) of which at least 80% of the content bigrams already appeared in an
  earlier sentence.
"""

from __future__ import annotations

import zlib

import numpy as np

FILLERS = (
    "okay",
    "ok",
    "alright",
    "basically",
    "anyway",
    "anyways",
    "um",
    "uh",
    "uhm",
    "well",
    "actually",
    "really",
    "literally",
    "like",
    "so",
)
HEDGES = (
    "maybe",
    "perhaps",
    "probably",
    "possibly",
    "might",
    "guess",
    "seems",
    "seem",
    "likely",
    "unsure",
    "suppose",
    "apparently",
    "roughly",
)
INTERJECTIONS = ("wait", "hmm", "hmmm", "hm", "oh", "oops", "whoa", "huh", "ah", "aha")
RESTATE_MIN_CONTENT = 3
RESTATE_OVERLAP = 0.8

METRICS = (
    "tokens",
    "words",
    "sentences",
    "words_per_sentence",
    "repeated_4gram_ratio",
    "distinct_1",
    "distinct_2",
    "compression_ratio",
    "filler_per_1k",
    "hedge_per_1k",
    "wait_per_1k",
    "restatement_share",
)


class Lexicons:
    """Word lists as arrays of spaCy string hashes (of the lower-case form)."""

    def __init__(self, strings) -> None:
        def ids(words):
            return np.array(sorted(strings.add(w) for w in words), np.uint64)

        self.fillers = ids(FILLERS)
        self.hedges = ids(HEDGES)
        self.interjections = ids(INTERJECTIONS)
        self.hold = strings.add("hold")
        self.on = strings.add("on")


def _ngram_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 hash per n-gram of `ids` (collisions are negligible at 64 bits)."""
    if len(ids) < n:
        return np.empty(0, np.uint64)
    with np.errstate(over="ignore"):
        h = ids[: len(ids) - n + 1].copy()
        for k in range(1, n):
            h = h * np.uint64(1_000_003) ^ ids[k : len(ids) - n + 1 + k]
    return h


def _distinct(ids: np.ndarray) -> float:
    return float(len(np.unique(ids)) / len(ids)) if len(ids) else 0.0


def compute(
    utf8: bytes, lower: np.ndarray, kind: np.ndarray, sent: np.ndarray, lex: Lexicons
) -> dict[str, float]:
    """Verbosity of one trace.

    Args:
        utf8: the trace as UTF-8 bytes (for the compression ratio).
        lower: ``(n_tokens,)`` uint64 lower-case string hashes of the non-space tokens.
        kind: ``(n_tokens,)`` int8: 0 punctuation, 1 stop word, 2 content word.
        sent: ``(n_tokens,)`` int64 sentence index of each token (non-decreasing).
        lex: the word lists of the pipeline's string store.
    """
    n_tok = len(lower)
    word = kind > 0
    words = lower[word]
    n_words = len(words)
    n_sent = len(np.unique(sent[word])) if n_words else 0
    per_1k = 1000.0 / n_tok if n_tok else 0.0

    holds = int(np.sum((lower[:-1] == lex.hold) & (lower[1:] == lex.on))) if n_tok > 1 else 0
    rep4 = _ngram_ids(words, 4)
    out = {
        "tokens": float(n_tok),
        "words": float(n_words),
        "sentences": float(n_sent),
        "words_per_sentence": n_words / n_sent if n_sent else 0.0,
        "repeated_4gram_ratio": 1.0 - _distinct(rep4) if len(rep4) else 0.0,
        "distinct_1": _distinct(words),
        "distinct_2": _distinct(_ngram_ids(words, 2)),
        "compression_ratio": len(utf8) / len(zlib.compress(utf8)) if utf8 else 0.0,
        "filler_per_1k": float(np.isin(words, lex.fillers).sum()) * per_1k,
        "hedge_per_1k": float(np.isin(words, lex.hedges).sum()) * per_1k,
        "wait_per_1k": float(np.isin(words, lex.interjections).sum() + holds) * per_1k,
        "restatement_share": _restatement_share(lower[kind == 2], sent[kind == 2], n_sent),
    }
    return {k: round(float(v), 6) for k, v in out.items()}


def _restatement_share(content: np.ndarray, sent: np.ndarray, n_sent: int) -> float:
    if n_sent == 0 or len(content) < 2:
        return 0.0
    # Content bigrams inside one sentence, each with the sentence it belongs to.
    same = sent[:-1] == sent[1:]
    grams = _ngram_ids(content, 2)[same]
    gsent = sent[:-1][same]
    if len(grams) == 0:
        return 0.0
    # A bigram is old if its first occurrence lies in an earlier sentence.
    _, first, inv = np.unique(grams, return_index=True, return_inverse=True)
    old = gsent[first[inv]] < gsent
    sids, sent_idx = np.unique(gsent, return_inverse=True)
    total = np.bincount(sent_idx)
    n_old = np.bincount(sent_idx, weights=old)
    n_content = np.bincount(np.searchsorted(sids, sent[np.isin(sent, sids)]), minlength=len(sids))
    restating = (n_content >= RESTATE_MIN_CONTENT) & (n_old >= RESTATE_OVERLAP * total)
    return float(restating.sum() / n_sent)
