"""Anchored matching: run spaCy's `Matcher` only on sentences that can hold a match.

spaCy's `Matcher` starts every pattern at every token, so its cost grows with tokens times
patterns and dwarfs the tokenizer on long traces. Each token pattern here gets an *anchor*: the
set of lower-case word forms one of its required tokens must have (for a ``LEMMA`` token, every
form the lookup table maps to that lemma). A numpy lookup finds the anchor words of a doc, and
only the patterns anchored there run, on a window around each anchor (as wide as the longest
pattern, inside the anchor's sentence). The result is
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
    """Expected frequency proxy: stop words are common, and shorter words more so (Zipf)."""
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
    best, best_cost = None, None
    for tok in pattern:
        if tok.get("OP") not in (None, "+", "{1}"):
            continue  # an optional token cannot anchor
        for attr in _TEXT_ATTRS:
            vals = _values(tok.get(attr)) if attr in tok else None
            if vals is None:
                continue
            words: set[str] = set()
            for v in vals:
                low = v.lower()
                words.add(low)
                words.add(low.replace("'", "\u2019"))
                if attr == "LEMMA":
                    words |= forms.get(v, set()) | forms.get(low, set())
            cost = sum(_word_cost(w) for w in words)
            if best_cost is None or cost < best_cost:
                best, best_cost = frozenset(words), cost
    return best


class AnchoredMatcher:
    """Token patterns grouped by anchor; `__call__` returns spans like a `Matcher` would."""

    def __init__(self, vocab, lemma_table: dict[str, str]) -> None:
        self.vocab = vocab
        self.forms = lemma_forms(lemma_table)
        self._groups: dict[frozenset, list[tuple[str, list[dict]]]] = defaultdict(list)
        self._free: list[tuple[str, list[dict]]] = []
        self._built = False

    def add(self, key: str, patterns: list[list[dict]]) -> None:
        """Add patterns under `key` (validated by a strict `Matcher` first)."""
        from spacy.matcher import Matcher

        Matcher(self.vocab, validate=True).add(key, patterns)
        for p in patterns:
            anchor = anchor_words(p, self.forms)
            (self._groups[anchor] if anchor else self._free).append((key, p))
        self._built = False

    def _build(self) -> None:
        from spacy.matcher import Matcher

        strings = self.vocab.strings
        self.matchers = []
        anchor_of_word: dict[int, list[int]] = defaultdict(list)
        self.max_len: list[int] = []
        for gi, (anchor, items) in enumerate(self._groups.items()):
            m = Matcher(self.vocab)
            for key, p in items:
                m.add(key, [p], greedy="LONGEST")
            self.matchers.append(m)
            # Longest possible match of the group (a token with "*" or "+" is unbounded).
            unbounded = any(tok.get("OP") in ("*", "+") for _, p in items for tok in p)
            self.max_len.append(1 << 30 if unbounded else max(len(p) for _, p in items))
            for w in anchor:
                anchor_of_word[strings.add(w)].append(gi)
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
        sent_of_hit = np.searchsorted(sent_starts, hit, side="right") - 1
        groups = self.member[pos[hit]]  # (n_hits, n_groups)
        bounds = np.r_[sent_starts, len(doc)]
        for g in np.flatnonzero(groups.any(axis=0)):
            sel = groups[:, g]
            h, sent = hit[sel], sent_of_hit[sel]
            span = self.max_len[g]
            # A match holds an anchor token and is at most `span` tokens long, so it lies in
            # [anchor - span + 1, anchor + span) inside the anchor's sentence.
            lo = np.maximum(h - span + 1, bounds[sent])
            hi = np.minimum(h + span, bounds[sent + 1])
            matcher = self.matchers[g]
            for a, b in _merge(lo, hi):
                out.extend(matcher(doc[a:b], as_spans=True))
        return out


def _merge(lo: np.ndarray, hi: np.ndarray) -> list[tuple[int, int]]:
    """Union of the sorted-by-start ranges ``[lo, hi)`` as a list of disjoint ranges."""
    out: list[tuple[int, int]] = []
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
