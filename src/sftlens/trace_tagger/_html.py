"""An HTML page of tagged traces, spans highlighted with spaCy's displaCy span style."""

from __future__ import annotations

import html
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from sftlens.core import DataError, write_text
from sftlens.trace_tagger._rules import LABELS

SPANS_KEY = "sftlens"
DEFAULT_MAX_CHARS = 20_000
COLORS = {
    "backtracking": "#f4a261",
    "verification": "#2a9d8f",
    "subgoal_setting": "#8ab17d",
    "backward_chaining": "#9b5de5",
    "hedging": "#e9c46a",
}
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
.trace {{ border-top: 1px solid #ccc; padding-top: 1em; margin-top: 1.5em; }}
.trace .spans {{ white-space: pre-wrap; }}
.meta {{ color: #555; font-size: 0.9em; }}
.legend span {{ padding: 2px 6px; margin-right: 6px; border-radius: 3px; }}
</style></head><body>
<h1>{title}</h1>
<p class="legend">{legend}</p>
{body}
</body></html>
"""


def _trace_html(nlp, text: str, tags: Mapping, max_chars: int) -> str:
    from spacy import displacy

    cut = text[:max_chars]
    doc = nlp.make_doc(cut)
    spans = []
    for sp in tags.get("spans", []):
        if sp["end"] > len(cut):
            continue
        # displaCy writes labels into the page as they are: escape them here (a tags file
        # from anywhere may hold markup in a label).
        label = html.escape(str(sp["label"]), quote=True)
        span = doc.char_span(sp["start"], sp["end"], label=label, alignment_mode="expand")
        if span is not None:
            spans.append(span)
    doc.spans[SPANS_KEY] = spans
    with warnings.catch_warnings():
        # displaCy warns on a doc without spans; a trace with no behaviour is a valid view.
        warnings.simplefilter("ignore", UserWarning)
        rendered = displacy.render(
            doc, style="span", page=False, options={"spans_key": SPANS_KEY, "colors": COLORS}
        )
    if len(text) > max_chars:
        rendered += f"<p class='meta'>[{len(text) - max_chars} more characters not shown]</p>"
    return rendered


def render_html(
    records: Iterable[Mapping],
    tags: Iterable[Mapping],
    text_field: str = "completion",
    id_field: str = "id",
    title: str = "Tagged traces",
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """One self-contained HTML page showing each record's text with its spans highlighted.

    Args:
        records: the tagged records (traces); each needs `id_field` and `text_field`.
        tags: Tags records; joined on ``id``. Records without tags are shown without spans.
        text_field: the record key holding the text.
        id_field: the record key matching the Tags ``id``.
        title: the page title.
        max_chars: characters shown per trace (the rest is summarised).

    Returns:
        The HTML page as a string (text is escaped).
    """
    import spacy

    nlp = spacy.blank("en")
    by_id = {t["id"]: t for t in tags}
    parts = []
    for k, rec in enumerate(records):
        if text_field not in rec:
            raise DataError(f"record {k}: no field {text_field!r} to render.")
        text = rec[text_field] or ""
        tg = by_id.get(rec.get(id_field, k), {"spans": [], "counts": {}})
        meta = {key: rec.get(key) for key in ("model", "task") if rec.get(key) is not None}
        step = (rec.get("checkpoint") or {}).get("step")
        if step is not None:
            meta["step"] = step
        correct = (rec.get("score") or {}).get("correct")
        if correct is not None:
            meta["correct"] = correct
        counts = ", ".join(f"{lab}: {n}" for lab, n in tg.get("counts", {}).items() if n)
        head = " · ".join(f"{key} {val}" for key, val in meta.items())
        parts.append(
            f"<div class='trace'><h3>{html.escape(str(rec.get(id_field, k)))}</h3>"
            f"<p class='meta'>{html.escape(head)}<br>{html.escape(counts or 'no spans')}</p>"
            f"{_trace_html(nlp, text, tg, max_chars)}</div>"
        )
    legend = "".join(f"<span style='background:{COLORS[lab]}'>{lab}</span>" for lab in LABELS)
    return _PAGE.format(title=html.escape(title), legend=legend, body="\n".join(parts))


def write_html(path: str | os.PathLike, records, tags, **kwargs) -> Path:
    """Write `render_html` to `path` atomically and return the path."""
    return write_text(path, render_html(records, tags, **kwargs))
