"""Probe positions on a user's own traces: tagged sentences, char offsets, the last prompt token.

Traces are any file `sftlens.core.read_traces` reads; the text is encoded as the probes see
every sequence (``format_prompt(tok, prompt) + completion``). Three ways to pick positions:

- ``sentences``: every sentence of the completion, at two kinds of position:
  ``sentence_start`` (the token holding the sentence's first character) and ``pre_sentence``
  (the last token that ends at or before it: nothing of the sentence is in the input yet, so
  a probe there asks whether the behaviour is decodable *before it is written*). Each row
  carries ``tag_<label>`` = 1 when a tagger span with that label overlaps the sentence.
- ``offsets``: char offsets into the completion given in the file, a list of objects with
  ``start`` (and any scalar labels) under a field; kinds ``offset`` and ``pre_offset``.
- ``last-prompt``: the last prompt token, one per trace.

A per-trace label can come from any field (``--label-field score.correct``) as column
``label``. Rows are grouped by problem id, so CV never splits one problem across folds, and
carry the surface features of the toy world's probes (position, tokens so far, the sentence
count, recent tokens), so the same controls apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sftlens.core import ConfigError, DataError, get_path
from sftlens.probes._cache import CacheItem
from sftlens.probes._datasets import _surface, encode_with_offsets, token_at, token_ending_at

POSITION_SOURCES = ("sentences", "offsets", "last-prompt")
SENTENCE_KINDS = ("pre_sentence", "sentence_start")
OFFSET_KINDS = ("pre_offset", "offset")
# A sentence ends at . ! ? (with closing quotes or brackets) before whitespace, or at a newline.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` char spans of the sentences of `text` (whitespace between them dropped)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def _trace_label(tr: Mapping, label_field: str | None) -> tuple[bool, int | None]:
    """(keep the trace, its label) for a per-trace `label_field`; traces without one are skipped."""
    if not label_field:
        return True, None
    v = get_path(tr, label_field, None)
    if v is None or isinstance(v, (dict, list)):
        return False, None
    if isinstance(v, str):
        v = {"true": 1, "false": 0, "1": 1, "0": 0}.get(v.strip().lower())
        if v is None:
            raise DataError(f"trace {tr.get('id')}: --label-field {label_field!r} is not 0/1.")
    return True, int(float(v) >= 0.5) if isinstance(v, float) else int(v)


def _encode(tokenizer: Any, tr: Mapping) -> tuple[list[int], list, int, int]:
    ids, offsets, resp_char = encode_with_offsets(tokenizer, tr.get("prompt") or "",
                                                  tr.get("completion") or "")  # fmt: skip
    return ids, offsets, resp_char, token_ending_at(offsets, resp_char) + 1


def _positions(offsets: list, resp_char: int, char: int, kinds: Sequence[str]) -> list:
    """(kind, token) for a char of the completion: the token holding it, the token before it."""
    out = []
    for kind in kinds:
        if kind in ("sentence_start", "offset"):
            out.append((kind, token_at(offsets, resp_char + char)))
        else:
            out.append((kind, token_ending_at(offsets, resp_char + char)))
    return out


def sentence_items(
    tokenizer: Any,
    traces: Iterable[Mapping],
    tags: Mapping[Any, Mapping],
    labels: Sequence[str],
    kinds: Sequence[str] = SENTENCE_KINDS,
    label_field: str | None = None,
) -> Iterator[CacheItem]:
    """One `CacheItem` per trace: positions at every sentence, labelled by the tagger's spans.

    Args:
        tokenizer: the checkpoint's tokenizer.
        traces: Trace records (``id``, ``problem_id``, ``prompt``, ``completion``).
        tags: Tags records by trace id (``spans`` with ``start``, ``end``, ``label``).
        labels: tag labels to turn into ``tag_<label>`` columns.
        kinds: ``pre_sentence`` and/or ``sentence_start``.
        label_field: a per-trace label path (``score.correct``) copied to column ``label``.

    Raises:
        DataError: a trace without tags (tag the same file first), an unknown kind.
    """
    bad = [k for k in kinds if k not in SENTENCE_KINDS]
    if bad:
        raise ConfigError(f"position kind {bad[0]!r}: use {', '.join(SENTENCE_KINDS)}.")
    for tr in traces:
        keep, trace_label = _trace_label(tr, label_field)
        if not keep:
            continue
        tg = tags.get(tr["id"])
        if tg is None:
            raise DataError(
                f"trace {tr['id']!r} has no tags; run `sftlens tag` on the same traces file and "
                "pass its output with --tags."
            )
        ids, offsets, resp_char, resp_tok = _encode(tokenizer, tr)
        spans = tg.get("spans") or []
        positions, rows = [], []
        for s_idx, (start, end) in enumerate(sentence_spans(tr.get("completion") or "")):
            hit = {lab: int(any(sp["label"] == lab and sp["start"] < end and sp["end"] > start
                                for sp in spans)) for lab in labels}  # fmt: skip
            for kind, pos in _positions(offsets, resp_char, start, kinds):
                if pos < 0 or (kind == "sentence_start" and pos < resp_tok):
                    continue
                positions.append(pos)
                rows.append({"position_kind": kind, "sentence_idx": s_idx,
                             **{f"tag_{k}": v for k, v in hit.items()}, "label": trace_label,
                             **_surface(ids, pos, resp_tok, s_idx)})  # fmt: skip
        if positions:
            yield CacheItem(str(tr["id"]), str(tr.get("problem_id", tr["id"])), ids, positions,
                            rows)  # fmt: skip


def offset_items(
    tokenizer: Any,
    traces: Iterable[Mapping],
    field: str,
    kinds: Sequence[str] = OFFSET_KINDS,
    label_field: str | None = None,
) -> Iterator[CacheItem]:
    """Positions at char offsets into the completion listed under `field` (``[{start, ...}]``).

    Every scalar key of an offset object other than ``start``/``end`` becomes a row column
    (the file's labels); all objects must have the same keys.

    Raises:
        DataError: a trace without the field, an offset past the text, differing keys.
    """
    bad = [k for k in kinds if k not in OFFSET_KINDS]
    if bad:
        raise ConfigError(f"position kind {bad[0]!r}: use {', '.join(OFFSET_KINDS)}.")
    keys: list[str] | None = None
    for tr in traces:
        keep, trace_label = _trace_label(tr, label_field)
        if not keep:
            continue
        marks = get_path(tr, field, None)
        if not isinstance(marks, list):
            raise DataError(f"trace {tr['id']!r}: no list of offsets under {field!r}.")
        ids, offsets, resp_char, resp_tok = _encode(tokenizer, tr)
        text_len = len(tr.get("completion") or "")
        positions, rows = [], []
        for j, mk in enumerate(marks):
            if not isinstance(mk, dict) or not isinstance(mk.get("start"), int):
                raise DataError(f"trace {tr['id']!r}: {field}[{j}] needs an integer 'start'.")
            if not 0 <= mk["start"] < max(text_len, 1):
                raise DataError(f"trace {tr['id']!r}: {field}[{j}].start {mk['start']} is "
                                f"outside the completion ({text_len} chars).")  # fmt: skip
            extra = {k: v for k, v in mk.items() if k not in ("start", "end")
                     and (v is None or isinstance(v, (bool, int, float, str)))}  # fmt: skip
            if keys is None:
                keys = sorted(extra)
            if sorted(extra) != keys:
                raise DataError(f"trace {tr['id']!r}: {field}[{j}] has keys {sorted(extra)}, "
                                f"others {keys}; give every offset the same keys.")  # fmt: skip
            for kind, pos in _positions(offsets, resp_char, mk["start"], kinds):
                if pos < 0:
                    continue
                positions.append(pos)
                rows.append({"position_kind": kind, "mark_idx": j, "label": trace_label,
                             **{f"mark_{k}": (int(v) if isinstance(v, bool) else v)
                                for k, v in extra.items()},
                             **_surface(ids, pos, resp_tok, j)})  # fmt: skip
        if positions:
            yield CacheItem(str(tr["id"]), str(tr.get("problem_id", tr["id"])), ids, positions,
                            rows)  # fmt: skip


def last_prompt_trace_items(
    tokenizer: Any, traces: Iterable[Mapping], label_field: str | None = None
) -> Iterator[CacheItem]:
    """The last prompt token of every trace, with the per-trace ``label``."""
    for tr in traces:
        keep, trace_label = _trace_label(tr, label_field)
        if not keep:
            continue
        ids, offsets, resp_char, _ = _encode(tokenizer, tr)
        pos = token_ending_at(offsets, resp_char)
        if pos < 0:
            continue
        yield CacheItem(str(tr["id"]), str(tr.get("problem_id", tr["id"])), ids[: pos + 1], [pos],
                        [{"position_kind": "last_prompt", "label": trace_label,
                          **_surface(ids, pos, pos + 1, 0)}])  # fmt: skip
