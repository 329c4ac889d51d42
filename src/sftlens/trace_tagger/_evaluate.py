"""Agreement between predicted spans and reference annotations (span or sentence level).

Used to validate rule sets against ground truth: the task world's exact ``backtrack`` /
``verify`` events, or sentence labels from another annotator. A predicted span matches a
reference span when their char ranges overlap; at sentence level a predicted span is first
widened to the sentence holding it.
"""

from __future__ import annotations

from collections.abc import Sequence


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def span_agreement(
    predicted: Sequence[tuple[int, int]], reference: Sequence[tuple[int, int]]
) -> dict[str, int]:
    """Overlap counts between predicted and reference ``(start, end)`` char ranges.

    Returns:
        ``tp_pred`` (predicted ranges overlapping some reference), ``n_pred``, ``tp_ref``
        (reference ranges overlapped by some prediction), ``n_ref``. Precision is
        ``tp_pred / n_pred``, recall ``tp_ref / n_ref``.
    """
    pred = sorted(predicted)
    ref = sorted(reference)
    tp_pred = sum(any(_overlaps(p, r) for r in ref) for p in pred)
    tp_ref = sum(any(_overlaps(r, p) for p in pred) for r in ref)
    return {"tp_pred": tp_pred, "n_pred": len(pred), "tp_ref": tp_ref, "n_ref": len(ref)}


def sentence_ranges(text: str, spans: Sequence[dict], tagger) -> list[tuple[int, int]]:
    """Widen each span to the sentence (as the tagger's pipeline splits `text`) holding it."""
    bounds = tagger.sentence_bounds(text)
    out = []
    for sp in spans:
        for s, e in bounds:
            if s <= sp["start"] < e:
                out.append((s, e))
                break
        else:
            out.append((sp["start"], sp["end"]))
    return sorted(set(out))


def prf(counts: dict[str, int]) -> dict[str, float]:
    """Precision, recall and F1 from `span_agreement` counts (0 where undefined)."""
    p = counts["tp_pred"] / counts["n_pred"] if counts["n_pred"] else 0.0
    r = counts["tp_ref"] / counts["n_ref"] if counts["n_ref"] else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def add_counts(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """Sum two count dicts (for pooling over traces)."""
    return {k: total.get(k, 0) + v for k, v in counts.items()}


EVENT_LABELS = {"backtrack": "backtracking", "verify": "verification"}


def evaluate_events(
    tagger, examples: Sequence[dict], text_field: str = "response", event_labels=None
) -> dict[str, dict[str, dict[str, float]]]:
    """Precision, recall and F1 of the tagger against ground-truth events, pooled over examples.

    Args:
        tagger: a `Tagger`.
        examples: dicts with the text under `text_field` and ``events`` (``type``, ``start``,
            ``end``), as the task world renders them.
        event_labels: event type -> tagger label (default: backtrack -> backtracking,
            verify -> verification).

    Returns:
        ``{"span": {label: metrics}, "sentence": {label: metrics}}`` where metrics holds
        ``precision``, ``recall``, ``f1`` and the counts.
    """
    event_labels = event_labels or EVENT_LABELS
    totals: dict[str, dict[str, dict[str, int]]] = {"span": {}, "sentence": {}}
    texts = [ex[text_field] for ex in examples]
    for ex, text, tags in zip(examples, texts, tagger.tag_many(texts), strict=True):
        for etype, label in event_labels.items():
            ref = [(ev["start"], ev["end"]) for ev in ex.get("events", []) if ev["type"] == etype]
            spans = [sp for sp in tags["spans"] if sp["label"] == label]
            pred = [(sp["start"], sp["end"]) for sp in spans]
            sent = sentence_ranges(text, spans, tagger)
            for level, p in (("span", pred), ("sentence", sent)):
                totals[level][label] = add_counts(
                    totals[level].get(label, {}), span_agreement(p, ref)
                )
    return {
        level: {label: {**c, **prf(c)} for label, c in by_label.items()}
        for level, by_label in totals.items()
    }
