"""Were a model's own verifications and backtracks right? The task-aware half of the tagger.

The tagger (task-agnostic) finds *where* a trace verifies or backtracks; this adapter uses the
Countdown problem to say whether each such move was *right*:

* a ``verification`` span is correct when the arithmetic claims it makes (inside the span, or
  else the nearest one on the same line) are true and each verdict agrees with the target: a
  claim followed by a negation (``not``, ``no``, ``too big``, ...) must miss the target, one
  followed by an affirmation (``yes``, ``correct``, ``matches``, ...) or written as
  ``expr = target`` must hit it; claims without verdict words take the next verdict;
* a ``backtracking`` span is precise when the partial state it abandons is a genuine dead end.
  The state is rebuilt from the model's own two-number steps before the span (``a op b = c``
  replaces ``a`` and ``b`` with the claimed ``c``; a step whose operands are not in the current
  state is placed under the deepest earlier state that holds them, which is how a model goes
  back without saying so; earlier backtracking spans pop the abandoned state). One-number
  leaves that miss the target are candidates of their parent, so the parent is what is
  abandoned. When no step precedes the span, or the latest step fits no state, the record says
  ``unknown`` and it is left out of the precision.
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from typing import Any

from sftlens.tasks._countdown_parse import parse_countdown_trace
from sftlens.tasks._countdown_solve import MAX_STATE, is_dead_end

NEGATION = re.compile(
    r"\b(not|no|isn't|doesn't|don't|never|miss|misses|missed|fails?|wrong|incorrect|none|"
    r"too (?:small|big|large|low|high))\b|≠|!=",
    re.IGNORECASE,
)
AFFIRM = re.compile(
    r"\b(yes|correct|right|match(?:es)?|works|found|equals?|equal to|is the target|got it|"
    r"that's it|done)\b|✓",
    re.IGNORECASE,
)


def _num(v: Fraction) -> int | str:
    return int(v) if v.denominator == 1 else str(v)


def _contains(state: list[Fraction], a: Fraction, b: Fraction) -> bool:
    c = Counter(state)
    c[a] -= 1
    c[b] -= 1
    return c[a] >= 0 and c[b] >= 0


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    return lo, len(text) if hi < 0 else hi


def _check_verification(
    text: str, span: dict, claims: list[dict], target: Fraction
) -> dict[str, Any]:
    s, e = span["start"], span["end"]
    inside = [c for c in claims if c["start"] < e and c["end"] > s]
    if not inside:
        lo, hi = _line_bounds(text, s, e)
        line = [c for c in claims if lo <= c["start"] and c["end"] <= hi]
        before = [c for c in line if c["end"] <= s]
        after = [c for c in line if c["start"] >= e]
        # The nearest claim on the line: the one just before the span, else just after.
        inside = before[-1:] or after[:1]
    rec: dict[str, Any] = {"start": s, "end": e, "text": text[s:e], "claims": inside}
    if not inside:
        return {**rec, "status": "unresolved", "correct": None, "reason": "no arithmetic claim"}
    # Each claim's verdict is read from its own stretch of text (up to the next claim; the
    # last one up to the end of its sentence). A claim with no verdict words takes the next
    # verdict ("9+2=11, 9*2=18. None is 22."); a final one with none asserts a match only
    # when it writes the target as its value ("Check: (7-3)*5+2 = 22.").
    tail = re.match(r"[^.!?\n]*", text[max(e, inside[-1]["end"]) :])
    stop = max(e, inside[-1]["end"]) + (tail.end() if tail else 0)
    verdicts: list[str | None] = []
    for k, c in enumerate(inside):
        seg = text[(min(s, c["start"]) if k == 0 else c["end"]) : (
            inside[k + 1]["start"] if k + 1 < len(inside) else stop
        )]  # fmt: skip
        verdicts.append("miss" if NEGATION.search(seg) else "match" if AFFIRM.search(seg) else None)
    following: str | None = "match" if Fraction(inside[-1]["claimed"]) == target else None
    for k in range(len(inside) - 1, -1, -1):
        verdicts[k] = following = verdicts[k] or following
    checked = []
    for c, verdict in zip(inside, verdicts, strict=True):
        hits = Fraction(c["lhs_value"]) == target
        checked.append({**c, "verdict": verdict, "hits_target": hits})
    arith_true = all(c["true"] for c in checked)
    wrong_match = any(c["verdict"] == "match" and not c["hits_target"] for c in checked)
    wrong_miss = any(c["verdict"] == "miss" and c["hits_target"] for c in checked)
    correct = arith_true and not wrong_match and not wrong_miss
    reason = (
        "ok"
        if correct
        else "false arithmetic"
        if not arith_true
        else "says it matches the target but does not"
        if wrong_match
        else "says it misses the target but it hits it"
    )
    verdict_text = text[min(s, inside[0]["start"]) : stop]
    mentions_target = any(Fraction(c["claimed"]) == target for c in inside) or bool(
        re.search(rf"(?<![\d/]){int(target)}(?![\d/])", verdict_text)
    )
    return {
        **rec,
        "claims": checked,
        "status": "checked",
        "arith_true": arith_true,
        "asserts_match": checked[-1]["verdict"] == "match",
        "value_is_target": checked[-1]["hits_target"],
        "mentions_target": mentions_target,
        "correct": correct,
        "reason": reason,
    }


def countdown_behaviour_checks(completion: str, problem: dict, spans: list[dict]) -> dict:
    """Score a trace's verification and backtracking spans against the Countdown problem.

    Args:
        completion: the model's text.
        problem: a Countdown problem record (``meta.numbers``, ``meta.target``, ``meta.ops``).
        spans: tagger spans ``{"start", "end", "label", ...}`` with char offsets into
            `completion`; labels other than ``verification`` and ``backtracking`` are ignored.

    Returns:
        ``{"verifications": [...], "backtracks": [...], "verification_correct_rate",
        "n_verifications", "n_verifications_unresolved", "backtrack_precision",
        "n_backtracks", "n_backtracks_unresolved", "n_claims", "n_claims_true"}``. Rates are
        None when nothing was resolvable. Each backtrack record has ``from_state`` (the
        abandoned numbers, or None) and ``dead_end`` (bool, or None when unknown).
    """
    meta = problem["meta"]
    target = Fraction(int(meta["target"]))
    ops = meta.get("ops", "+-*/")
    root = [Fraction(int(x)) for x in meta["numbers"]]
    claims = parse_countdown_trace(completion)
    relevant = sorted(
        (s for s in spans if s.get("label") in ("verification", "backtracking")),
        key=lambda s: (s["start"], s["end"]),
    )
    verifications = [
        _check_verification(completion, s, claims, target)
        for s in relevant
        if s["label"] == "verification"
    ]

    # Replay steps and backtracks in text order to know the state each backtrack abandons.
    stack: list[list[Fraction]] = [root]
    n_steps, last_unplaced = 0, False
    ci = 0
    backtracks = []
    for span in (s for s in relevant if s["label"] == "backtracking"):
        while ci < len(claims) and claims[ci]["end"] <= span["start"]:
            c = claims[ci]
            ci += 1
            if c["n_ops"] != 1:
                continue  # whole-expression checks are not moves
            a, b = (Fraction(x) for x in c["numbers_used"])
            depth = next(
                (k for k in range(len(stack) - 1, -1, -1) if _contains(stack[k], a, b)), None
            )
            if depth is None:
                last_unplaced = True
                continue
            state = list(stack[depth])
            state.remove(a)
            state.remove(b)
            del stack[depth + 1 :]
            stack.append([Fraction(c["claimed"])] + state)
            n_steps, last_unplaced = n_steps + 1, False
        rec: dict[str, Any] = {"start": span["start"], "end": span["end"]}
        rec["text"] = completion[span["start"] : span["end"]]
        # One-number misses are candidates of their parent: the parent is what is abandoned.
        while len(stack) > 1 and len(stack[-1]) == 1 and stack[-1][0] != target:
            stack.pop()
        if n_steps == 0 or last_unplaced or len(stack) == 1:
            why = (
                "no step before it"
                if n_steps == 0
                else "latest step fits no state"
                if last_unplaced
                else "nothing left to abandon"
            )
            backtracks.append(
                {**rec, "status": "unknown", "from_state": None, "dead_end": None, "reason": why}
            )
            continue
        abandoned = stack.pop()
        dead = None if len(abandoned) > MAX_STATE else is_dead_end(abandoned, int(target), ops)
        reason = {True: "dead end", False: "target still reachable", None: "state too large"}
        backtracks.append(
            {
                **rec,
                "status": "resolved" if dead is not None else "unknown",
                "from_state": [_num(v) for v in abandoned],
                "dead_end": dead,
                "reason": reason[dead],
            }
        )

    checked = [v for v in verifications if v["status"] == "checked"]
    resolved = [b for b in backtracks if b["dead_end"] is not None]
    return {
        "verifications": verifications,
        "backtracks": backtracks,
        "verification_correct_rate": (
            sum(v["correct"] for v in checked) / len(checked) if checked else None
        ),
        "n_verifications": len(verifications),
        "n_verifications_unresolved": len(verifications) - len(checked),
        "backtrack_precision": (
            sum(b["dead_end"] for b in resolved) / len(resolved) if resolved else None
        ),
        "n_backtracks": len(backtracks),
        "n_backtracks_unresolved": len(backtracks) - len(resolved),
        "n_claims": len(claims),
        "n_claims_true": sum(c["true"] for c in claims),
    }
