"""Features of the learned layer: what the rules cannot see about a sentence.

One function, `unit_features`, turns a text, its units (sentences as the tagger splits them, or
the chunks of a labelled file) and the rule spans into one set of feature strings per unit.
Fitting (`_fit`) and tagging (`_calibration`) both call it, so a fitted layer sees at tagging
time exactly the features it was fitted on. Features (prefix: meaning):

- ``w:`` / ``b:`` words and word pairs of the unit (lower case); ``o1:``-``o3:`` its opening
  one to three words (where "Wait," or "But" usually decides the reading);
- ``r:`` / ``l:`` rule keys and labels with a span in the unit; ``pl:``, ``nl:``, ``p2l:`` the
  labels of the previous, next and second previous unit (is it inside a check or a search?);
  ``po:`` / ``no:`` the opening word of the previous and next unit;
- ``pos:`` the unit's place in the trace (fifths), ``len:`` its length in words (log2 bins),
  ``q`` when it asks a question;
- ``num:`` whether its numbers were all seen before (a re-derivation of an earlier result),
  some, or none; ``eq:seen`` an equation over numbers already seen; ``expr:seen`` the same
  numbers in the same order as an earlier unit;
- ``since:<label>:`` how many units back the last span of that label was (an episode).

Tokens come from a small regular expression, not from spaCy, so the fitter needs no pipeline
of its own and the features do not move when the tokenizer changes.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[^\sa-z\d]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
_EPISODE_LABELS = ("verification", "backtracking", "hedging")


def _since(dist: int | None) -> str:
    if dist is None:
        return "none"
    if dist <= 2:
        return str(dist)
    return "3-5" if dist <= 5 else "6+"


def _len_bin(n: int) -> str:
    return str(min(n.bit_length(), 7))


def assign_spans(
    units: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, str]]
) -> list[set[str]]:
    """The rule keys (``label.name``) of the spans overlapping each unit.

    Args:
        units: ``(start, end)`` char ranges, sorted by start, not overlapping.
        spans: ``(start, end, rule key)``.
    """
    starts = [s for s, _ in units]
    out: list[set[str]] = [set() for _ in units]
    for s, e, key in spans:
        k = max(bisect.bisect_right(starts, s) - 1, 0)
        while k < len(units) and units[k][0] < max(e, s + 1):
            if units[k][1] > s:
                out[k].add(key)
            k += 1
    return out


def unit_features(
    text: str, units: Sequence[tuple[int, int]], unit_rules: Sequence[set[str]]
) -> list[set[str]]:
    """One set of feature strings per unit (see the module docstring).

    Args:
        text: the whole trace.
        units: ``(start, end)`` char ranges of its units, in order.
        unit_rules: the rule keys with a span in each unit (`assign_spans`).
    """
    n = len(units)
    toks = [_TOKEN.findall(text[s:e].lower()) for s, e in units]
    labels = [{k.split(".", 1)[0] for k in keys} for keys in unit_rules]
    seen_numbers: set[str] = set()
    seen_exprs: set[tuple[str, ...]] = set()
    last_at: dict[str, int] = {}
    out: list[set[str]] = []
    for i, (t, keys) in enumerate(zip(toks, unit_rules, strict=True)):
        words = [w for w in t if w[0].isalnum()]
        f = {"w:" + w for w in words}
        f.update("b:" + a + "_" + b for a, b in zip(words, words[1:], strict=False))
        for k in range(1, 4):
            if len(t) >= k:
                f.add(f"o{k}:" + "_".join(t[:k]))
        f.update("r:" + k for k in keys)
        f.update("l:" + lab for lab in labels[i])
        if i > 0:
            f.update("pl:" + lab for lab in labels[i - 1])
            if toks[i - 1]:
                f.add("po:" + toks[i - 1][0])
        else:
            f.add("first")
        if i > 1:
            f.update("p2l:" + lab for lab in labels[i - 2])
        if i + 1 < n:
            f.update("nl:" + lab for lab in labels[i + 1])
            if toks[i + 1]:
                f.add("no:" + toks[i + 1][0])
        else:
            f.add("last")
        f.add(f"pos:{5 * i // max(n, 1)}")
        f.add("len:" + _len_bin(len(words)))
        if t and t[-1] == "?":
            f.add("q")
        # Re-derivation: an earlier result computed or stated again.
        s, e = units[i]
        nums = _NUMBER.findall(text[s:e])
        if nums:
            seen = sum(x in seen_numbers for x in nums)
            f.add("num:" + ("all" if seen == len(nums) else "some" if seen else "new"))
            if "=" in t and seen == len(nums):
                f.add("eq:seen")
            expr = tuple(nums)
            if len(expr) >= 2 and expr in seen_exprs:
                f.add("expr:seen")
            seen_numbers.update(nums)
            seen_exprs.add(expr)
        for lab in _EPISODE_LABELS:
            f.add(f"since:{lab}:" + _since(i - last_at[lab] if lab in last_at else None))
        for lab in labels[i]:
            last_at[lab] = i
        out.append(f)
    return out
