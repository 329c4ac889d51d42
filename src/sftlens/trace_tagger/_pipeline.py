"""The spaCy pipeline and the segmentation reasoning traces need.

`build_nlp` returns ``spacy.blank("en")`` with two components, both vectorised with numpy so the
whole pipeline stays close to the bare tokenizer's speed:

- ``sftlens_sentencizer``: spaCy's `Sentencizer` rule (a sentence starts at the first
  non-punctuation token after a sentence-final punctuation mark), with two changes for
  reasoning traces: a line break ends a sentence (traces put one step per line, often without
  a period), and white space never starts one (so "x.  Yes" starts the sentence at "Yes").
- ``sftlens_lemmatizer``: spaCy's lookup lemmatizer (the ``lemma_lookup`` table of
  spacy-lookups-data) applied to the token text, falling back to its lower case, so
  "Verified" at the start of a sentence still gets the lemma "verify" (and an unknown
  capitalised word such as "Plug" gets "plug").

`segment` cuts a trace into pieces before spaCy sees it: ``<think>`` / ``</think>`` tags end a
piece, and a piece never exceeds `MAX_PIECE_CHARS` (cut at a blank line, else a line or sentence
end, when one is near), so a 1 MB trace is processed in bounded pieces. Blank-line paragraphs
and line breaks end sentences inside a piece; keeping them in one piece avoids spaCy's per-doc
overhead on traces that put a blank line after every sentence.
"""

from __future__ import annotations

import re

import numpy as np

MAX_PIECE_CHARS = 20_000
# Markup that separates reasoning from the answer.
_PIECE_BREAK = re.compile(r"</?think>")
# Where to cut an over-long piece, best first: a blank line, a line end, a sentence end, any
# white space.
_CUT_POINTS = (
    re.compile(r"\n[ \t\r\f\v]*\n"),
    re.compile(r"\n"),
    re.compile(r"[.!?](?=\s)"),
    re.compile(r"\s"),
)

_INITIAL = re.compile(r"[A-Za-z]\.")
SENTENCIZER = "sftlens_sentencizer"
LEMMATIZER = "sftlens_lemmatizer"
_registered = False


def segment(text: str, max_chars: int = MAX_PIECE_CHARS) -> list[tuple[int, int]]:
    """Cut `text` into pieces for spaCy, as ``(start, end)`` char offsets.

    Pieces end at ``<think>`` tags, never contain leading or trailing white
    space, and are at most `max_chars` long. Offsets index `text` itself, so spans found in a
    piece map back exactly.
    """
    pieces: list[tuple[int, int]] = []
    pos = 0
    for m in _PIECE_BREAK.finditer(text):
        _add_piece(text, pos, m.start(), max_chars, pieces)
        pos = m.end()
    _add_piece(text, pos, len(text), max_chars, pieces)
    return pieces


def _add_piece(text: str, start: int, end: int, max_chars: int, out: list) -> None:
    # Trim white space so pieces never start or end a span with it.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start > max_chars:
        cut = _cut(text, start, start + max_chars)
        _add_piece(text, start, cut, max_chars, out)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append((start, end))


def _cut(text: str, start: int, limit: int) -> int:
    """The best cut point in ``text[start:limit]``, searching its second half only."""
    lo = start + (limit - start) // 2
    window = text[lo:limit]
    for pat in _CUT_POINTS:
        last = None
        for last in pat.finditer(window):  # noqa: B007 - we want the last match
            pass
        if last is not None:
            return lo + last.end()
    return limit


def _register_components() -> None:
    global _registered
    if _registered:
        return
    from spacy.attrs import IS_PUNCT, IS_SPACE, IS_TITLE, LEMMA, LOWER, ORTH, SENT_START
    from spacy.language import Language
    from spacy.pipeline import Sentencizer

    @Language.factory(SENTENCIZER)
    def make_sentencizer(nlp, name):
        return _FastSentencizer(
            nlp, Sentencizer.default_punct_chars, (IS_SPACE, IS_PUNCT, SENT_START)
        )

    @Language.factory(LEMMATIZER)
    def make_lemmatizer(nlp, name):
        return _LookupLemmatizer(nlp, (ORTH, LOWER, IS_TITLE, LEMMA))

    _registered = True


class _FastSentencizer:
    """spaCy's `Sentencizer` rule, vectorised, plus line breaks as sentence ends.

    Whether a token ends a sentence is a lexeme flag (computed once per distinct string by
    spaCy), so a doc costs two array reads and one write.
    """

    def __init__(self, nlp, punct_chars, attrs) -> None:
        punct = frozenset(punct_chars)
        self.end_flag = nlp.vocab.add_flag(
            lambda s: s in punct or ("\n" in s and s.isspace()), flag_id=-1
        )
        self.attrs = attrs

    def __call__(self, doc):
        n = len(doc)
        if n == 0:
            return doc
        isspace_a, ispunct_a, sent_a = self.attrs
        arr = doc.to_array([self.end_flag, ispunct_a, isspace_a])
        ends, skip = arr[:, 0].astype(bool), (arr[:, 1] | arr[:, 2]).astype(bool)
        # A token starts a sentence if it is neither punctuation nor white space and the last
        # sentence-end mark before it comes after the last such token before it.
        content = ~(skip | ends)
        idx = np.arange(n)
        last_end = np.maximum.accumulate(np.where(ends, idx, -1))
        last_content = np.maximum.accumulate(np.where(content, idx, -1))
        start = np.empty(n, bool)
        start[0] = True
        start[1:] = content[1:] & (last_end[:-1] > last_content[:-1])
        doc.from_array([sent_a], np.where(start, 1, -1).astype(np.int64).view(np.uint64))
        return doc


class _LookupLemmatizer:
    """The spacy-lookups-data ``lemma_lookup`` table applied with numpy (text, then lower)."""

    def __init__(self, nlp, attrs) -> None:
        import spacy_lookups_data
        from spacy.strings import get_string_id
        from spacy.util import load_language_data

        # form -> lemma, as strings (the matcher derives anchor word forms from it).
        self.table: dict[str, str] = load_language_data(spacy_lookups_data.en["lemma_lookup"])
        keys = np.array([get_string_id(k) for k in self.table], np.uint64)
        vals = np.array([nlp.vocab.strings.add(v) for v in self.table.values()], np.uint64)
        order = np.argsort(keys)
        self.keys, self.vals = keys[order], vals[order]
        self.attrs = attrs

    def _lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.minimum(np.searchsorted(self.keys, ids), len(self.keys) - 1)
        found = self.keys[pos] == ids
        return found, self.vals[pos]

    def __call__(self, doc):
        if len(doc) == 0:
            return doc
        orth_a, lower_a, title_a, lemma_a = self.attrs
        arr = doc.to_array([orth_a, lower_a, title_a])
        f1, v1 = self._lookup(arr[:, 0])
        f2, v2 = self._lookup(arr[:, 1])
        # Unknown words keep their text, except a capitalised word ("Plug" at a sentence
        # start), which falls back to its lower case like a base form would.
        fallback = np.where(arr[:, 2] == 1, arr[:, 1], arr[:, 0])
        lemma = np.where(f1, v1, np.where(f2, v2, fallback))
        doc.from_array([lemma_a], lemma)
        return doc


SUFFIX_WINDOW = 16


class TailSearch:
    """A ``$``-anchored suffix regex searched over the last `SUFFIX_WINDOW` characters only.

    spaCy strips one prefix or suffix at a time from a run of text without white space, and
    searches the suffix regex over the whole remaining run each time; `re.search` tries every
    start position, so a 20 KB run of brackets cost 20 KB x 10 K searches (quadratic: 54 s).
    Suffixes are short, so starting the search near the end finds the same match in constant
    time (lookbehinds still see the characters before the window). Only a suffix longer than
    the window (a run of 17+ dots; units such as "km/h" are 4) is split differently.
    """

    def __init__(self, pattern: re.Pattern) -> None:
        self.pattern = pattern

    def __call__(self, string: str) -> re.Match | None:
        return self.pattern.search(string, max(0, len(string) - SUFFIX_WINDOW))


MAX_RUN_CHARS = 256
_LONG_RUN = re.compile(r"\S{" + str(MAX_RUN_CHARS + 1) + ",}")


class RunBoundedTokenizer:
    """spaCy's tokenizer, fed runs without white space at most `MAX_RUN_CHARS` long.

    Each prefix or suffix spaCy strips from a run copies and hashes the rest of the run, so a
    run of n brackets costs n^2 / 2 bytes of work. A text with a longer run is tokenized in
    parts (the text around the runs, and each run in `MAX_RUN_CHARS` chunks) and the tokens
    joined into one `Doc` with the same text; texts without such runs (all ordinary prose) go
    to spaCy's tokenizer unchanged.
    """

    def __init__(self, tokenizer) -> None:
        from spacy.attrs import IDX, LENGTH, SPACY

        self.tokenizer = tokenizer
        self.vocab = tokenizer.vocab
        self._attrs = [IDX, LENGTH, SPACY]

    def __call__(self, text: str):
        if _LONG_RUN.search(text) is None:
            return self.tokenizer(text)
        from spacy.tokens import Doc

        words: list[str] = []
        spaces: list[bool] = []
        pos = 0
        for m in _LONG_RUN.finditer(text):
            self._extend(text[pos : m.start()], words, spaces)
            for k in range(m.start(), m.end(), MAX_RUN_CHARS):
                self._extend(text[k : min(k + MAX_RUN_CHARS, m.end())], words, spaces)
            pos = m.end()
        self._extend(text[pos:], words, spaces)
        return Doc(self.vocab, words=words, spaces=spaces)

    def _extend(self, part: str, words: list[str], spaces: list[bool]) -> None:
        # spaCy's white space after a token is one space or nothing; any other white space is
        # a token of its own, so words + spaces rebuild `part` exactly.
        if not part:
            return
        arr = self.tokenizer(part).to_array(self._attrs).tolist()
        words.extend(part[i : i + n] for i, n, _ in arr)
        spaces.extend(bool(s) for _, _, s in arr)


def build_nlp():
    """``spacy.blank("en")`` with the sentencizer and the lookup lemmatizer; offline."""
    import spacy
    from spacy.util import compile_suffix_regex

    _register_components()
    nlp = spacy.blank("en")
    # English keeps "B." (an initial) as one token; in reasoning traces a single letter before
    # a period is a variable or a node ending a sentence ("back to B."), so split it.
    nlp.tokenizer.rules = {
        k: v for k, v in nlp.tokenizer.rules.items() if not _INITIAL.fullmatch(k)
    }
    suffixes = [*nlp.Defaults.suffixes, r"(?<=^[A-Za-z])\."]
    nlp.tokenizer.suffix_search = TailSearch(compile_suffix_regex(suffixes))
    nlp.tokenizer = RunBoundedTokenizer(nlp.tokenizer)
    nlp.add_pipe(SENTENCIZER)
    nlp.add_pipe(LEMMATIZER)
    return nlp
