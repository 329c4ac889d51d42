"""Labelled traces (what ``tag-eval`` and ``tag-fit`` read) and label maps.

A labelled file is JSONL, one trace per line: ``id``, ``text`` and ``chunks``, each chunk with
``start`` and ``end`` (char offsets into ``text``; null when unknown), ``text`` and ``tags`` (a
list of the judge's tag names). A chunk without offsets is found by its words, in order, with
any white space between them, after the previous chunk.

A label map (``--map 'self_checking=verification'``) says which judge tags mean which tagger
label; several tags may map to one label; every other tag is a negative for it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

from sftlens.core import ConfigError, DataError, read_jsonl
from sftlens.trace_tagger._rules import LABELS


@dataclasses.dataclass
class LabelledTrace:
    """One labelled trace: its chunks as sorted, non-overlapping char ranges with their tags."""

    id: str
    group: str
    text: str
    units: list[tuple[int, int]]
    tags: list[frozenset[str]]
    source: str


def parse_maps(maps: Sequence[str]) -> dict[str, str]:
    """``['self_checking=verification', ...]`` -> ``{judge tag: tagger label}``."""
    out: dict[str, str] = {}
    for m in maps:
        tag, sep, label = (x.strip() for x in m.partition("="))
        if not sep or not tag or not label:
            raise ConfigError(
                f"--map {m!r}: write JUDGE_TAG=LABEL, e.g. 'self_checking=verification'."
            )
        if label not in LABELS:
            raise ConfigError(f"--map {m!r}: unknown label {label!r}; known: {', '.join(LABELS)}.")
        if tag in out and out[tag] != label:
            raise ConfigError(f"--map {m!r}: tag {tag!r} is already mapped to {out[tag]!r}.")
        out[tag] = label
    if not out:
        raise ConfigError(
            "give at least one --map JUDGE_TAG=LABEL, e.g. 'self_checking=verification'."
        )
    return out


def _locate(text: str, chunk_text: str, pos: int) -> tuple[int, int] | None:
    words = chunk_text.split()
    if not words:
        return None
    m = re.compile(r"\s*".join(re.escape(w) for w in words)).search(text, pos)
    return (m.start(), m.end()) if m else None


def _group_key(records: list[dict]) -> tuple[list[str], str]:
    """The group (problem) of each record, and how it was found.

    A ``problem_id`` or ``problem`` field names it; else an id whose last ``/`` part is shared
    by several records (``model/correct/problem_12``); else every trace is its own group.
    """
    for field in ("problem_id", "problem"):
        if all(field in r for r in records):
            return [str(r[field]) for r in records], f"field {field!r}"
    tails = [str(r["id"]).rsplit("/", 1)[-1] for r in records]
    if len(set(tails)) < len(records):
        return tails, "the last '/' part of the id"
    return [str(r["id"]) for r in records], "trace (no problem named)"


def read_labelled(path: str | os.PathLike) -> tuple[list[LabelledTrace], str]:
    """Read a labelled file; returns its traces and how they were grouped into problems.

    Raises:
        DataError: a missing file, a malformed line, a chunk without tags, or a chunk whose
            text cannot be found in its trace (each naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path.")
    records = list(read_jsonl(path, required=("id", "text", "chunks")))
    if not records:
        raise DataError(f"{path}: no records; a labelled file has one trace per line.")
    groups, how = _group_key(records)
    out = []
    for line, (rec, group) in enumerate(zip(records, groups, strict=True), 1):
        text = rec["text"]
        if not isinstance(text, str) or not isinstance(rec["chunks"], list):
            raise DataError(f"{path}: line {line}: 'text' must be a string and 'chunks' a list.")
        units, tags = [], []
        pos = 0
        for k, ch in enumerate(rec["chunks"]):
            where = f"{path}: line {line}: chunk {k}"
            if not isinstance(ch, dict) or not isinstance(ch.get("tags"), list):
                raise DataError(f"{where}: needs 'tags' (a list of tag names).")
            s, e = ch.get("start"), ch.get("end")
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s <= e <= len(text)):
                found = _locate(text, str(ch.get("text") or ""), pos)
                if found is None:
                    raise DataError(
                        f"{where}: no valid start/end and its 'text' is not found in the trace "
                        "after the previous chunk; give char offsets or the chunk's exact words."
                    )
                s, e = found
            s = max(s, pos)  # overlapping chunks are clipped so units never overlap
            if e <= s:
                continue
            units.append((s, e))
            tags.append(frozenset(str(t) for t in ch["tags"]))
            pos = e
        out.append(LabelledTrace(str(rec["id"]), group, text, units, tags, path.name))
    return out, how


def label_targets(
    traces: Sequence[LabelledTrace], label_map: dict[str, str], labels: Sequence[str]
) -> dict[str, bool]:
    """Which of `labels` the file can speak to: those with a mapped tag in some chunk.

    A file whose judge never uses a tag mapped to a label says nothing about that label (its
    chunks are not negatives), so fitting and evaluation skip it there.
    """
    present = {t for tr in traces for ts in tr.tags for t in ts}
    return {lab: any(label_map[t] == lab for t in present if t in label_map) for lab in labels}


def check_map(traces: Sequence[LabelledTrace], label_map: dict[str, str], source: str) -> None:
    """Refuse a map none of whose tags occurs in the file (a misspelled tag name)."""
    present = {t for tr in traces for ts in tr.tags for t in ts}
    if not present & set(label_map):
        raise ConfigError(
            f"{source}: none of the mapped tags ({', '.join(sorted(label_map))}) occurs; "
            f"tags in the file: {', '.join(sorted(present))}."
        )
