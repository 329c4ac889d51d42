"""Token positions and labels for probing, from ground-truth events or tagger spans.

Text is tokenized exactly as SFT saw it: ``format_prompt(tok, prompt) + response``. Char offsets
of events (into ``response``) map to tokens through the tokenizer's offset mapping. Each chosen
position carries its labels and the surface features the baseline may use (position, tokens
since the response began, steps so far, the current token, a bag of recent tokens).

Position kinds:
    ``step_end``: the token holding the last character of a step event.
    ``pre_next``: the last token that ends at or before the step's end (and before the next
        event starts): unlike ``step_end`` it never straddles into the following text, so
        nothing of a later backtrack or check is in the input yet.
    ``last_prompt``: the last token of the prompt (one per sequence).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sftlens.core import DataError
from sftlens.probes._cache import CacheItem

POSITION_KINDS = ("step_end", "pre_next", "last_prompt")
RECENT_WINDOW = 8


def encode_with_offsets(tokenizer: Any, prompt: str, response: str) -> tuple[list[int], list, int]:
    """Token ids, char offsets and the char where the response starts in the full text.

    The text is ``format_prompt(tokenizer, prompt) + response``; special tokens are added only
    for tokenizers without a chat template (the template already writes them).
    """
    from sftlens.tasks import format_prompt

    head = format_prompt(tokenizer, prompt)
    add_special = getattr(tokenizer, "chat_template", None) is None
    enc = tokenizer(head + response, add_special_tokens=add_special, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]], len(head)


def token_ending_at(offsets: Sequence[tuple[int, int]], char_end: int) -> int:
    """Index of the last token whose span ends at or before `char_end` (-1 if none)."""
    ends = [e if e > s else -1 for s, e in offsets]  # special/empty tokens: treat as ending early
    # Offsets are non-decreasing for real tokens; walk back from the bisect point to be safe.
    i = bisect.bisect_right(ends, char_end) - 1
    while i >= 0 and ends[i] > char_end:
        i -= 1
    return i


def token_at(offsets: Sequence[tuple[int, int]], char: int) -> int:
    """Index of the token whose span contains `char` (the nearest earlier token if none does)."""
    starts = [s for s, _ in offsets]
    i = bisect.bisect_right(starts, char) - 1
    # Walk back over empty spans (special tokens) to the token that holds the char.
    while i >= 0 and not offsets[i][0] <= char < offsets[i][1]:
        if offsets[i][1] <= char:
            break
        i -= 1
    if i >= 0 and offsets[i][0] <= char < offsets[i][1]:
        return i
    return token_ending_at(offsets, char + 1)


def _surface(ids: list[int], pos: int, resp_tok: int, step_idx: int) -> dict[str, Any]:
    return {
        "resp_pos": pos - resp_tok,
        "step_idx": step_idx,
        "token_id": int(ids[pos]),
        "recent_ids": [int(t) for t in ids[max(0, pos - RECENT_WINDOW + 1) : pos + 1]],
    }


def _state_surface(state: Sequence[Any], target: Any) -> dict[str, float]:
    """What a reader of the text sees of a Countdown state: how many numbers are left, their
    magnitudes, and how far the nearest is from the target (no search needed for any of it)."""
    nums = [float(x) for x in state if isinstance(x, (int, float))]
    if not nums:
        return {"max_left": 0.0, "sum_left": 0.0, "target_gap": float("nan")}
    gap = min(abs(x - float(target)) for x in nums) if target is not None else float("nan")
    return {"max_left": max(nums), "sum_left": sum(nums), "target_gap": gap}


def _verdict_next(step: dict, later: Sequence[dict]) -> bool:
    """Whether the very next text is a verdict on this state: a check of its value against the
    target that wraps the step ("16/1=16, not 51"), so a probe there may read what it is about
    to write."""
    return any(ev.get("type") == "verify" and ev["start"] == step["start"] for ev in later)


def _commented(step: dict, later: Sequence[dict]) -> bool:
    """Whether the trace ever writes a verdict on this state: a check of its value, or a
    backtrack leaving it (a state never commented on has neither)."""
    state = list(step.get("state") or [])
    return _verdict_next(step, later) or any(
        ev.get("type") == "backtrack" and list(ev.get("from_state") or []) == state for ev in later
    )


def dead_end_items(
    tokenizer: Any,
    examples: Iterable[dict],
    kinds: Sequence[str] = ("step_end", "pre_next"),
) -> Iterator[CacheItem]:
    """One `CacheItem` per Countdown CoT example: a position per step event and kind.

    Args:
        tokenizer: the checkpoint's tokenizer.
        examples: rendered examples (``prompt``, ``response``, ``events``; ``id`` and
            ``problem_id`` or ``meta``); step events carry ``dead_end`` and ``state``.
        kinds: position kinds among ``step_end`` and ``pre_next``.

    Yields:
        Items whose rows hold ``position_kind``, ``dead_end`` (0/1), ``state_size``, ``state``
        (its numbers, space-separated), ``verdict_next`` (0/1: the next text is a verdict on
        it), ``commented`` (0/1: the trace ever writes one), the state's surface
        (``max_left``, ``sum_left``, ``target_gap``: numbers left, their size, the nearest
        one's distance to the target), ``step_idx`` and the token surface features; grouped by
        problem id.
    """
    bad = [k for k in kinds if k not in ("step_end", "pre_next")]
    if bad:
        raise DataError(f"position kind {bad[0]!r} unknown here; use step_end or pre_next.")
    for ex in examples:
        for key in ("prompt", "response", "events"):
            if key not in ex:
                raise DataError(f"example {ex.get('id', '?')}: missing {key!r}.")
        ids, offsets, resp_char = encode_with_offsets(tokenizer, ex["prompt"], ex["response"])
        resp_tok = token_ending_at(offsets, resp_char) + 1
        events = sorted(ex["events"], key=lambda e: (e["start"], e["end"]))
        target = (ex.get("meta") or {}).get("target")
        positions, rows = [], []
        step_idx = 0
        for j, ev in enumerate(events):
            if ev.get("type") != "step" or "dead_end" not in ev:
                continue
            step_idx += 1
            # The next event written after this step (a verify that wraps the step is not "next").
            nxt = next((e["start"] for e in events[j + 1 :] if e["start"] >= ev["end"]), None)
            for kind in kinds:
                if kind == "step_end":
                    pos = token_at(offsets, resp_char + ev["end"] - 1)
                else:
                    cut = ev["end"] if nxt is None else min(ev["end"], nxt)
                    pos = token_ending_at(offsets, resp_char + cut)
                if pos < resp_tok:
                    continue  # the step's text shares a token with the prompt: no clean position
                positions.append(pos)
                rows.append(
                    {
                        "position_kind": kind,
                        "dead_end": int(bool(ev["dead_end"])),
                        "state_size": len(ev.get("state") or []),
                        "state": " ".join(str(x) for x in ev.get("state") or []),
                        "verdict_next": int(_verdict_next(ev, events[j + 1 :])),
                        "commented": int(_commented(ev, events[j + 1 :])),
                        **_state_surface(ev.get("state") or [], target),
                        **_surface(ids, pos, resp_tok, step_idx),
                    }
                )
        if positions:
            yield CacheItem(
                trace_id=str(ex.get("id")),
                group=str(ex.get("problem_id", ex.get("id"))),
                input_ids=ids,
                positions=positions,
                rows=rows,
            )


def last_prompt_items(tokenizer: Any, records: Iterable[dict], text_field: str = "response"):
    """One position per record: the last prompt token (for CKA drift and refusal-style probes).

    Yields `CacheItem` s with rows ``{"position_kind": "last_prompt"}`` plus surface features.
    """
    for rec in records:
        ids, offsets, resp_char = encode_with_offsets(
            tokenizer, rec["prompt"], rec.get(text_field) or ""
        )
        pos = token_ending_at(offsets, resp_char)
        if pos < 0:
            continue
        yield CacheItem(
            trace_id=str(rec.get("id")),
            group=str(rec.get("problem_id", rec.get("id"))),
            input_ids=ids[: pos + 1],
            positions=[pos],
            rows=[{"position_kind": "last_prompt", **_surface(ids, pos, pos + 1, 0)}],
        )
