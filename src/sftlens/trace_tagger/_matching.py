"""Anchored matching: run spaCy's `Matcher` only on sentences that can hold a match.

spaCy's `Matcher` starts every pattern at every token, so its cost grows with tokens times
patterns and dwarfs the tokenizer on long traces. Each token pattern here gets an *anchor*: the
set of lower-case word forms one of its required tokens must have (for a ``LEMMA`` token, every
form the lookup table maps to that lemma). A numpy lookup finds the anchor words of a doc, and
only the patterns anchored there run, on a window around each anchor (as wide as the longest
pattern's reach before and after its anchor token, inside the anchor's sentence). The result is
the same set of matches as one `Matcher` over the doc (the equivalence is tested), at a small
fraction of the cost. Patterns are still validated by a ``Matcher(vocab, validate=True)``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from spacy.lang.en.stop_words import STOP_WORDS

# NORM cannot anchor: "n't" has the norm "not" but not the lower-case form "not".
_TEXT_ATTRS = ("LOWER", "ORTH", "TEXT", "LEMMA")


def _word_cost(word: str) -> float:
    """Expected frequency proxy: punctuation is the most common, then stop words, and shorter
    words more than longer ones (Zipf). A comma anchor would run its patterns at every comma."""
    if not any(c.isalnum() for c in word):
        return 4.0
    return 1.0 if word in STOP_WORDS else 2.0 ** -len(word)


def _values(spec) -> list[str] | None:
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, dict) and set(spec) == {"IN"}:
        return [str(v) for v in spec["IN"]]
    return None


def lemma_forms(lemma_table: dict[str, str]) -> dict[str, set[str]]:
    """lemma -> the lower-case forms the lookup lemmatizer maps to it (and the lemma itself)."""
    forms: dict[str, set[str]] = defaultdict(set)
    for form, lemma in lemma_table.items():
        forms[lemma].add(form.lower())
    return forms


def anchor_words(pattern: list[dict], forms: dict[str, set[str]]) -> frozenset[str] | None:
    """The cheapest anchor of a pattern (lower-case words), or None if it has none."""
    found = _anchor(pattern, forms)
    return found[0] if found else None


def _token_words(tok: dict, attr: str, forms: dict[str, set[str]]) -> frozenset[str] | None:
    """Lower-case words a token must have to satisfy `tok`'s `attr` constraint, or None."""
    vals = _values(tok.get(attr)) if attr in tok else None
    if vals is None:
        return None
    words: set[str] = set()
    for v in vals:
        low = v.lower()
        words.add(low)
        words.add(low.replace("'", "\u2019"))
        if attr == "LEMMA":
            words |= forms.get(v, set()) | forms.get(low, set())
    return frozenset(words)


def _text_constraints(
    pattern: list[dict], forms: dict[str, set[str]]
) -> list[tuple[int, frozenset[str]]]:
    """``(token index, words)`` for each text constraint of a required token of `pattern`:
    a match has one of `words` (lower case) at that token."""
    out = []
    for j, tok in enumerate(pattern):
        if tok.get("OP") not in (None, "+", "{1}"):
            continue  # an optional token constrains nothing
        for attr in _TEXT_ATTRS:
            words = _token_words(tok, attr, forms)
            if words is not None:
                out.append((j, words))
    return out


def _anchor(pattern: list[dict], forms: dict[str, set[str]]) -> tuple[frozenset[str], int] | None:
    """The cheapest anchor of a pattern and the index of its token, or None."""
    best, best_cost = None, None
    for j, words in _text_constraints(pattern, forms):
        cost = sum(_word_cost(w) for w in words)
        if best_cost is None or cost < best_cost:
            best, best_cost = (words, j), cost
    return best


_UNBOUNDED = 1 << 30


def _width(tok: dict) -> int:
    """Most tokens one pattern token can consume."""
    op = tok.get("OP")
    if op in (None, "!", "?", "{1}"):
        return 1
    if op in ("*", "+"):
        return _UNBOUNDED
    # "{n}", "{n,m}", "{n,}", "{,m}"
    hi = op.strip("{}").split(",")[-1]
    return int(hi) if hi else _UNBOUNDED


def _reach(pattern: list[dict], j: int) -> tuple[int, int]:
    """Most tokens a match can have before and after the token matched by pattern token `j`."""
    before = sum(_width(t) for t in pattern[:j])
    after = sum(_width(t) for t in pattern[j + 1 :])
    return min(before, _UNBOUNDED), min(after, _UNBOUNDED)


class AnchoredMatcher:
    """Token patterns grouped by anchor; `__call__` returns spans like a `Matcher` would."""

    def __init__(self, vocab, lemma_table: dict[str, str]) -> None:
        self.vocab = vocab
        self.forms = lemma_forms(lemma_table)
        # anchor words -> (key, pattern, index of the anchor token in the pattern)
        self._groups: dict[frozenset, list[tuple[str, list[dict], int]]] = defaultdict(list)
        self._free: list[tuple[str, list[dict]]] = []
        self._built = False

    def add(self, key: str, patterns: list[list[dict]]) -> None:
        """Add patterns under `key` (validated by a strict `Matcher` first)."""
        from spacy.matcher import Matcher

        Matcher(self.vocab, validate=True).add(key, patterns)
        for p in patterns:
            found = _anchor(p, self.forms)
            if found:
                self._groups[found[0]].append((key, p, found[1]))
            else:
                self._free.append((key, p))
        self._built = False

    def _build(self) -> None:
        from spacy.matcher import Matcher

        strings = self.vocab.strings
        self.matchers = []
        anchor_of_word: dict[int, list[int]] = defaultdict(list)
        # How far a match of the group can reach before and after its anchor token.
        before: list[int] = []
        after: list[int] = []
        self.needs: list[list[list[frozenset[int]]]] = []
        for gi, (anchor, items) in enumerate(self._groups.items()):
            m = Matcher(self.vocab)
            for key, p, _ in items:
                m.add(key, [p], greedy="LONGEST")
            self.matchers.append(m)
            reaches = [_reach(p, j) for _, p, j in items]
            before.append(max(r[0] for r in reaches))
            after.append(max(r[1] for r in reaches))
            # Per pattern, the word sets its required tokens need (as lower-case hashes): a
            # window holding none of some set cannot match that pattern.
            self.needs.append(
                [
                    [
                        frozenset(strings.add(w) for w in ws)
                        for _, ws in _text_constraints(p, self.forms)
                    ]
                    for _, p, _ in items
                ]
            )
            for w in anchor:
                anchor_of_word[strings.add(w)].append(gi)
        self.before = np.array(before, np.int64)
        self.after = np.array(after, np.int64)
        keys = np.array(sorted(anchor_of_word), np.uint64)
        self.keys = keys
        # member[a, g]: anchor word a belongs to group g.
        self.member = np.zeros((max(len(keys), 1), max(len(self.matchers), 1)), bool)
        for a, h in enumerate(keys.tolist()):
            self.member[a, anchor_of_word[h]] = True
        self.free = None
        if self._free:
            self.free = Matcher(self.vocab)
            for key, p in self._free:
                self.free.add(key, [p], greedy="LONGEST")
        self._built = True

    def __call__(self, doc, lower: np.ndarray, sent_starts: np.ndarray) -> list:
        """Spans (with ``label_`` = pattern key) for `doc`.

        Args:
            doc: the Doc.
            lower: ``(n_tokens,)`` uint64 lower-case hashes of the doc's tokens.
            sent_starts: ``(n_sentences,)`` token index of each sentence start (ascending).
        """
        if not self._built:
            self._build()
        out = list(self.free(doc, as_spans=True)) if self.free is not None else []
        if len(lower) == 0 or len(self.keys) == 0:
            return out
        pos = np.minimum(np.searchsorted(self.keys, lower), len(self.keys) - 1)
        hit = np.flatnonzero(self.keys[pos] == lower)
        if len(hit) == 0:
            return out
        # One row per (anchor hit, group anchored on that word).
        row, g = np.nonzero(self.member[pos[hit]])
        h = hit[row]
        sent = np.searchsorted(sent_starts, h, side="right") - 1
        bounds = np.r_[sent_starts, len(doc)]
        # A match holds an anchor token, with at most `before` tokens ahead of it and `after`
        # behind, inside the anchor's sentence.
        lo = np.maximum(h - self.before[g], bounds[sent])
        hi = np.minimum(h + self.after[g] + 1, bounds[sent + 1])
        order = np.lexsort((lo, g))
        for gi, a, b in _merge(g[order].tolist(), lo[order].tolist(), hi[order].tolist()):
            # Calling the matcher costs far more than this test, and most windows fail it.
            present = set(lower[a:b].tolist())
            if any(all(not present.isdisjoint(ws) for ws in need) for need in self.needs[gi]):
                out.extend(self.matchers[gi](doc[a:b], as_spans=True))
        return out


def _merge(groups: list[int], lo: list[int], hi: list[int]) -> list[tuple[int, int, int]]:
    """Per group, the union of its overlapping ranges ``[lo, hi)`` (sorted by group, then
    start), as ``(group, start, end)``. Ranges that only touch stay apart: windows end at
    sentence bounds, and a pattern with ``*`` must not match across one."""
    out: list[tuple[int, int, int]] = []
    for g, a, b in zip(groups, lo, hi, strict=True):
        if out and out[-1][0] == g and a < out[-1][2]:
            if b > out[-1][2]:
                out[-1] = (g, out[-1][1], b)
        else:
            out.append((g, a, b))
    return out
