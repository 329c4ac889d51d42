"""``tag-eval``: agreement of the tagger (rules alone, or with a fitted layer) with labelled traces.

A chunk is predicted to carry a label when a span of that label overlaps it; the judge's chunk
carries it when one of its tags maps to it. Figures per label come from `_agreement`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from sftlens.core import ConfigError, DataError
from sftlens.trace_tagger._agreement import agreement
from sftlens.trace_tagger._features import assign_spans
from sftlens.trace_tagger._labelled import LabelledTrace, check_map, label_targets, read_labelled

SPLITS = ("all", "tuning", "held-out")


def split_traces(traces: Sequence[LabelledTrace], split: str) -> list[LabelledTrace]:
    """The traces of one split: ``tuning`` is the first half of the sorted problems (as
    `tag-fit` tunes on), ``held-out`` the rest, ``all`` every trace."""
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: choose one of {', '.join(SPLITS)}.")
    if split == "all":
        return list(traces)
    groups = sorted({t.group for t in traces})
    tune = set(groups[: -(-len(groups) // 2)])
    return [t for t in traces if (t.group in tune) == (split == "tuning")]


class TagsFile:
    """Tags records read from a file (e.g. a model judge's), scored like a tagger by trace id."""

    def __init__(self, path: str | os.PathLike):
        from sftlens.core import read_jsonl

        self.path = path
        self.records = {str(r["id"]): r for r in read_jsonl(path, required=("id", "spans"))}
        ids = sorted({str(r.get("ruleset")) for r in self.records.values()})
        self.tag_id = ", ".join(ids)

    def for_traces(self, traces: Sequence[LabelledTrace]) -> list[dict]:
        missing = [t.id for t in traces if t.id not in self.records]
        if missing:
            raise DataError(
                f"{self.path}: no Tags record with id {missing[0]!r} ({len(missing)} traces of "
                "the labelled file missing); tag the labelled file itself (--text-field text)."
            )
        return [self.records[t.id] for t in traces]


def chunk_labels(tagger, traces: Sequence[LabelledTrace]) -> list[list[set[str]]]:
    """Per trace, per chunk: the labels of the tagger's spans overlapping the chunk."""
    out = []
    if isinstance(tagger, TagsFile):
        found = tagger.for_traces(traces)
    else:
        found = tagger.tag_many([t.text for t in traces])
    for tr, tags in zip(traces, found, strict=True):
        spans = [(sp["start"], sp["end"], sp["label"]) for sp in tags["spans"]]
        out.append(assign_spans(tr.units, spans))
    return out


def evaluate_labelled(
    path: str | os.PathLike,
    label_map: dict[str, str],
    taggers: dict[str, object],
    split: str = "all",
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[list[dict], dict]:
    """Agreement of each tagger with a labelled file, per label the file uses.

    Args:
        path: labelled JSONL (``id``, ``text``, ``chunks`` with ``start``, ``end``, ``tags``).
        label_map: judge tag -> tagger label.
        taggers: name -> `Tagger` (e.g. ``{"rules": ..., "fitted": ...}``).
        split: ``all``, ``tuning`` or ``held-out`` problems (see `split_traces`).
        n_boot: bootstrap resamples by trace; seed: their seed.

    Returns:
        ``(rows, info)``: one row per (tagger, label) with `agreement`'s metrics, and
        ``info`` (file, grouping, traces, chunks, labels skipped because the file never uses them).
    """
    traces, grouping = read_labelled(path)
    check_map(traces, label_map, str(path))
    traces = split_traces(traces, split)
    if not traces:
        raise ConfigError(f"{path}: the {split!r} split is empty (one problem); use --split all.")
    labels = sorted(set(label_map.values()))
    speaks = label_targets(traces, label_map, labels)
    gold = {
        lab: [np.array([any(label_map.get(t) == lab for t in ts) for ts in tr.tags], bool)
              for tr in traces]
        for lab in labels
    }  # fmt: skip
    rows = []
    for name, tagger in taggers.items():
        pred = chunk_labels(tagger, traces)
        for lab in labels:
            if not speaks[lab]:
                continue
            p = [np.array([lab in s for s in tr], bool) for tr in pred]
            m = agreement(p, gold[lab], [tr.tags for tr in traces], n_boot=n_boot, seed=seed)
            rows.append({"tagger": name, "ruleset": tagger.tag_id, "label": lab, **m})
    info = {
        "file": str(path),
        "grouped_by": grouping,
        "split": split,
        "traces": len(traces),
        "chunks": sum(len(t.units) for t in traces),
        "skipped_labels": [lab for lab in labels if not speaks[lab]],
    }
    return rows, info
