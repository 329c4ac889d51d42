"""`Tagger`: reasoning-behaviour spans, counts and verbosity for any text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from sftlens.core import interrupt_point
from sftlens.trace_tagger import _verbosity
from sftlens.trace_tagger._calibration import FIT_RULE, Calibration, resolve_calibration
from sftlens.trace_tagger._matching import AnchoredMatcher
from sftlens.trace_tagger._pipeline import LEMMATIZER, MAX_PIECE_CHARS, build_nlp, segment
from sftlens.trace_tagger._rules import LABELS, Rule
from sftlens.trace_tagger._ruleset import RULESET_ID, get_ruleset

DEFAULT_BATCH_TEXTS = 64


def clean_text(text: str | bytes | None) -> tuple[str, bytes]:
    """The text to tag and its UTF-8 bytes.

    ``None`` is the empty text; bytes are decoded as UTF-8 with invalid bytes replaced by
    U+FFFD; unpaired surrogates (from JSON escapes) become ``?``, one for one, so char offsets
    into the input string stay valid.
    """
    if text is None:
        return "", b""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise TypeError(f"expected text as str, got {type(text).__name__}")
    try:
        return text, text.encode("utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-8", errors="replace")
        return data.decode("utf-8"), data


class Tagger:
    """Deterministic rule-based tagger of reasoning behaviours.

    Labels: ``backtracking``, ``verification``, ``subgoal_setting``, ``backward_chaining``,
    ``hedging`` (definitions and examples in the rule modules and ``docs/tagger.md``).

    Args:
        ruleset: a registered rule-set id (default `RULESET_ID`); written into every output.
        max_piece_chars: longest piece handed to spaCy at once (long traces are cut at blank
            lines, line or sentence ends).
        calibration: a fitted layer over the rules (`sftlens tag-fit`): a file path,
            ``"default"`` for the one shipped in the package, or None for the rules alone.
            A layer fitted over other rules is refused (`ConfigError`).

    Example:
        >>> tags = Tagger().tag("Wait, that's not right. Let me verify: 4 * 6 = 24.")
        >>> sorted(tags["counts"].items())[:2]
        [('backtracking', 1), ('backward_chaining', 0)]
    """

    def __init__(
        self,
        ruleset: str = RULESET_ID,
        max_piece_chars: int = MAX_PIECE_CHARS,
        calibration: str | Calibration | None = None,
    ):
        from spacy.attrs import IDX, IS_PUNCT, IS_SPACE, IS_STOP, LENGTH, LOWER, SENT_START
        from spacy.matcher import PhraseMatcher

        self.ruleset = ruleset
        self.rules: tuple[Rule, ...] = get_ruleset(ruleset)
        self.calibration = resolve_calibration(calibration)
        if self.calibration is not None:
            self.calibration.check_rules(ruleset)
        # What every Tags record's ``ruleset`` says: the rules, and the fit when one is used.
        self.tag_id = self.calibration.tag_id if self.calibration else ruleset
        self.max_piece_chars = max_piece_chars
        self.nlp = build_nlp()
        strings = self.nlp.vocab.strings
        self._attrs = [LOWER, IS_SPACE, IS_PUNCT, IS_STOP, SENT_START, IDX, LENGTH]
        self._lex = _verbosity.Lexicons(strings)
        self.matcher = AnchoredMatcher(self.nlp.vocab, self.nlp.get_pipe(LEMMATIZER).table)
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self._by_id: dict[int, Rule] = {}
        self._context_rules = tuple(r for r in self.rules if r.context is not None)
        for r in self.rules:
            self._by_id[strings.add(r.key)] = r
            token_patterns, phrase_patterns = [], []
            for p in r.patterns():
                (phrase_patterns if isinstance(p, str) else token_patterns).append(p)
            if token_patterns:
                self.matcher.add(r.key, token_patterns)
            if phrase_patterns:
                self.phrases.add(r.key, [self.nlp.make_doc(p) for p in phrase_patterns])

    def tag(self, text: str | bytes | None) -> dict:
        """Tag one text.

        Returns:
            ``{"ruleset", "spans", "counts", "verbosity"}``: spans are dicts with ``start``,
            ``end`` (char offsets into `text`), ``label``, ``rule``, ``text`` and ``sentence``
            (index of the sentence holding the span's start); counts map each label to the
            number of sentences carrying it; verbosity maps metric -> float.
        """
        return next(iter(self.tag_many([text])))

    def tag_many(
        self, texts: Iterable[str | bytes | None], batch_size: int = DEFAULT_BATCH_TEXTS
    ) -> Iterator[dict]:
        """Tag texts lazily, in order; one result per text (see `tag`)."""
        batch: list = []
        for text in texts:
            batch.append(text)
            if len(batch) >= batch_size:
                yield from self._tag_batch(batch)
                batch = []
        if batch:
            yield from self._tag_batch(batch)

    def sentence_bounds(self, text: str | bytes | None) -> list[tuple[int, int]]:
        """``(start, end)`` char offsets of the sentences the tagger sees in `text`."""
        text, _ = clean_text(text)
        jobs = [(text[s:e], s) for s, e in segment(text, self.max_piece_chars)]
        return [
            (sent.start_char + off, sent.end_char + off)
            for doc, off in self.nlp.pipe(jobs, as_tuples=True)
            for sent in doc.sents
        ]

    def _tag_batch(self, texts: list) -> list[dict]:
        cleaned = [clean_text(t) for t in texts]
        jobs = [
            (text[s:e], (i, s))
            for i, (text, _) in enumerate(cleaned)
            for s, e in segment(text, self.max_piece_chars)
        ]
        states = [_TraceState() for _ in texts]
        for doc, (i, offset) in self.nlp.pipe(jobs, as_tuples=True, batch_size=32):
            self._add_doc(states[i], doc, offset)
            interrupt_point("tag.spacy")
        return [
            self._finish(st, text, data) for st, (text, data) in zip(states, cleaned, strict=True)
        ]

    def _add_doc(self, st: _TraceState, doc, offset: int) -> None:
        arr = doc.to_array(self._attrs)
        starts = arr[:, 4].astype(np.int64) == 1
        # Sentence index of every token, continuing the count across pieces.
        sent = np.cumsum(starts) - 1 + st.n_sent
        st.n_sent += int(starts.sum())
        sent_starts = np.flatnonzero(starts)
        if (self._context_rules or self.calibration) and len(sent_starts):
            # Char range of each sentence: its first token to the end of its last non-space
            # token (trailing white space belongs to no sentence).
            solid = np.flatnonzero(arr[:, 1] == 0)
            last = solid[np.searchsorted(solid, np.r_[sent_starts[1:], len(doc)]) - 1]
            ends = arr[last, 5] + arr[last, 6]
            st.sent_chars.append(np.c_[arr[sent_starts, 5], ends].astype(np.int64) + offset)
        spans = self.matcher(doc, arr[:, 0], sent_starts)
        spans += self.phrases(doc, as_spans=True)
        for span in spans:
            st.spans.append(
                (span.start_char + offset, span.end_char + offset, self._by_id[span.label],
                 int(sent[span.start]))
            )  # fmt: skip
        keep = arr[:, 1] == 0
        word = arr[keep, 2] == 0
        # 0 punctuation, 1 stop word, 2 content word (the verbosity module's token kinds).
        st.kind.append((word.astype(np.int8) * (1 + (arr[keep, 3] == 0))).astype(np.int8))
        st.lower.append(arr[keep, 0])
        st.sent.append(sent[keep])

    def _finish(self, st: _TraceState, text: str, data: bytes) -> dict:
        spans = _resolve(st.spans)
        if self._context_rules and st.sent_chars:
            spans = _add_context(spans, self._context_rules, np.concatenate(st.sent_chars))
        if self.calibration is not None and st.sent_chars:
            spans = _apply_fit(spans, text, np.concatenate(st.sent_chars), self.calibration)
        counts = {label: 0 for label in LABELS}
        for label in LABELS:
            counts[label] = len({sent for _, _, r, sent in spans if r.label == label})
        cat = np.concatenate
        verbosity = _verbosity.compute(
            data,
            cat(st.lower) if st.lower else np.empty(0, np.uint64),
            cat(st.kind) if st.kind else np.empty(0, np.int8),
            cat(st.sent) if st.sent else np.empty(0, np.int64),
            self._lex,
        )
        return {
            "ruleset": self.tag_id,
            "spans": [
                {
                    "start": s,
                    "end": e,
                    "label": r.label,
                    "rule": r.name,
                    "text": text[s:e],
                    "sentence": sent,
                }
                for s, e, r, sent in spans
            ],
            "counts": counts,
            "verbosity": verbosity,
        }


class _TraceState:
    """What one trace accumulates while its pieces stream through spaCy."""

    __slots__ = ("spans", "lower", "kind", "sent", "n_sent", "sent_chars")

    def __init__(self) -> None:
        self.spans: list[tuple[int, int, Rule, int]] = []
        self.sent_chars: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.kind: list[np.ndarray] = []
        self.sent: list[np.ndarray] = []
        self.n_sent = 0


def _resolve(spans: list[tuple[int, int, Rule, int]]) -> list[tuple[int, int, Rule, int]]:
    """Drop spans whose rule yields to a label or rule key in the same sentence, and overlapping
    repeats of one rule (the longest stays); sort by position."""
    present = {(sent, r.label) for _, _, r, sent in spans}
    present |= {(sent, r.key) for _, _, r, sent in spans}
    by_rule: dict[str, list[tuple[int, int, Rule, int]]] = {}
    for sp in spans:
        if not any((sp[3], label) in present for label in sp[2].yields_to):
            by_rule.setdefault(sp[2].key, []).append(sp)
    kept: list[tuple[int, int, Rule, int]] = []
    for group in by_rule.values():
        # Sweep by start: of overlapping matches of one rule, the longest stays.
        group.sort(key=lambda x: (x[0], x[0] - x[1]))
        run: list[tuple[int, int, Rule, int]] = []
        for sp in group:
            if run and sp[0] < run[-1][1]:
                if sp[1] - sp[0] > run[-1][1] - run[-1][0]:
                    run[-1] = sp
            else:
                run.append(sp)
        kept += run
    return sorted(kept, key=lambda x: (x[0], x[1], x[2].key))


def _add_context(
    spans: list[tuple[int, int, Rule, int]], rules: tuple[Rule, ...], sent_chars: np.ndarray
) -> list[tuple[int, int, Rule, int]]:
    """Add the whole-sentence spans of context rules to resolved `spans` (sorted as before).

    Args:
        sent_chars: ``(n_sentences, 2)`` start and end char of every sentence of the text.
    """
    by_sent: dict[int, set[str]] = {}
    for _, _, r, sent in spans:
        by_sent.setdefault(sent, set()).add(r.key)
    added = [
        (int(sent_chars[k, 0]), int(sent_chars[k, 1]), r, k)
        for r in rules
        for k in r.context(by_sent)
        if k not in by_sent
    ]
    if not added:
        return spans
    return sorted(spans + added, key=lambda x: (x[0], x[1], x[2].key))


_FIT_RULES = {label: Rule(FIT_RULE, label, lambda: []) for label in LABELS}


def _apply_fit(
    spans: list[tuple[int, int, Rule, int]], text: str, sent_chars: np.ndarray, cal: Calibration
) -> list[tuple[int, int, Rule, int]]:
    """Let a fitted layer decide its labels per sentence (see `_calibration`)."""
    unit_rules: list[set[str]] = [set() for _ in range(len(sent_chars))]
    for _, _, r, sent in spans:
        unit_rules[sent].add(r.key)
    units = [(int(s), int(e)) for s, e in sent_chars]
    pred = cal.predict(text, units, unit_rules)
    col = {label: j for j, label in enumerate(cal.labels)}
    kept = [sp for sp in spans if sp[2].label not in col or pred[sp[3], col[sp[2].label]]]
    has = {(sent, r.label) for _, _, r, sent in kept}
    added = [
        (units[k][0], units[k][1], _FIT_RULES[label], int(k))
        for label, j in col.items()
        for k in np.flatnonzero(pred[:, j])
        if (k, label) not in has
    ]
    return sorted(kept + added, key=lambda x: (x[0], x[1], x[2].key))


_CACHE: dict[tuple[str, str | None], Tagger] = {}


def get_tagger(ruleset: str = RULESET_ID, calibration: str | None = None) -> Tagger:
    """A process-wide `Tagger` for `ruleset` (and a calibration file, or ``"default"``), built
    on first use (building one takes a while: the lookup tables load and every pattern is
    validated)."""
    key = (ruleset, None if calibration is None else str(calibration))
    if key not in _CACHE:
        _CACHE[key] = Tagger(ruleset, calibration=calibration)
    return _CACHE[key]


def verbosity(text: str | bytes | None) -> dict[str, float]:
    """Verbosity metrics of one text (see `sftlens.trace_tagger._verbosity` for definitions)."""
    return get_tagger().tag(text)["verbosity"]
