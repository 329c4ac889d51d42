"""The toy world's ground truth as labelled traces (the contract `tag-eval` and `tag-fit` read).

Each SFT example's response becomes one labelled trace: ``id``, ``problem_id``, ``text`` (the
response) and ``chunks``, one per non-empty line (the toy traces write one step, check or
backtrack per line), each with the ground-truth event types that overlap it as its ``tags``
(``backtrack``, ``verify``, ``step``; a line with no event has none). So the tagger can be
checked, or fitted, on text whose labels are exact rather than a judge's.
"""

from __future__ import annotations

from collections.abc import Iterable

from sftlens.core import DataError

__all__ = ["EVENT_TAGS", "labelled_traces"]

# Ground-truth event types written as chunk tags (map them with --map backtrack=backtracking).
EVENT_TAGS = ("backtrack", "verify", "step")


def labelled_traces(examples: Iterable[dict], where: str = "examples") -> list[dict]:
    """Labelled-trace records from SFT examples with ``response`` and ``events``.

    Args:
        examples: records as ``sftlens data <task> --style ...`` writes them.
        where: the file, for error messages.

    Raises:
        DataError: a record without a response or events (problem records have neither).
    """
    out = []
    for k, ex in enumerate(examples, start=1):
        text, events = ex.get("response"), ex.get("events")
        if not isinstance(text, str) or not isinstance(events, list):
            raise DataError(
                f"{where}: record {k} has no response with events; write SFT examples with "
                "`sftlens data countdown --style cot` first."
            )
        chunks, pos = [], 0
        for line in text.split("\n"):
            start, end = pos, pos + len(line)
            pos = end + 1
            if not line.strip():
                continue
            tags = sorted(
                {
                    ev["type"]
                    for ev in events
                    if ev.get("type") in EVENT_TAGS and ev["start"] < end and ev["end"] > start
                }
            )
            chunks.append({"start": start, "end": end, "text": line, "tags": tags})
        rid = ex.get("id", k - 1)
        out.append({"id": rid, "problem_id": ex.get("problem_id", rid), "text": text,
                    "chunks": chunks})  # fmt: skip
    return out
