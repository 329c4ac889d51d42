"""Read a free-form Countdown trace back into its arithmetic claims.

A claim is ``<expression> = <number>`` anywhere in the text (``7-3=4``, ``4 * 5 = 20``,
``(7-3)*5+2 = 22``, ``4×5 = 20``). For each ``=`` the parser takes the number on its right
(an integer, optionally negative or ``a/b``) and the longest run of arithmetic characters on its
left that parses as an expression with at least one operator. So ``Left: 4 5 2. 4*5=20`` yields
``4*5=20``, and ``20+2=22, 22-1=21`` yields two claims. Each claim is evaluated exactly with the
verifier's parser (never executed) and marked true or false.

Not read: claims in words (``four times five is twenty``), chains whose right side is itself an
expression (``4*5 = 10+10``: its second ``=``-free half is not a claim), decimals.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from sftlens.tasks._countdown_verify import ExprError, evaluate, fraction_str, tokenize

MAX_LHS_CHARS = 120  # how far left of an '=' an expression may start
MAX_TRACE_CHARS = 200_000  # longer traces are read up to this point only
_ASCII = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})
_LHS_CHARS = frozenset("0123456789+-*/() \t×÷−–·")
# The claimed value: an integer (or a/b), not followed by more digits, a decimal point and digit,
# or an operator that continues an expression.
_RHS = re.compile(r"[ \t]*(-?\d+(?:/\d+)?)(?![\d])(?!\.\d)(?![ \t]*[-+*/×÷][ \t]*[\d(])")


def _claim_at(text: str, eq: int) -> dict[str, Any] | None:
    rhs = _RHS.match(text, eq + 1)
    if rhs is None:
        return None
    i = eq
    while i > 0 and eq - i < MAX_LHS_CHARS and text[i - 1] in _LHS_CHARS:
        i -= 1
    raw = text[i:eq]
    # Drop characters from the left until the rest tokenizes ("(((...", "07", "**" upstream).
    for cut in range(len(raw)):
        try:
            tokens = tokenize(raw[cut:], lenient=True)
        except ExprError:
            continue
        i, raw = i + cut, raw[cut:]
        break
    else:
        return None
    # The longest suffix of tokens that is a whole expression with an operator.
    for k in range(len(tokens)):
        if tokens[k][0] not in ("num", "("):
            continue
        sub = raw[tokens[k][2] :].strip()
        try:
            value, numbers, ops = evaluate(sub, lenient=True)
        except ExprError:
            continue
        if not ops:
            return None  # a bare number (``x = 5`` style) is not an arithmetic claim
        start = i + tokens[k][2]
        claimed_text = rhs.group(1)
        claimed = Fraction(claimed_text)
        compact = re.sub(r"\s+", "", sub).translate(_ASCII)
        return {
            "start": start,
            "end": rhs.end(1),
            "expr": f"{compact}={claimed_text}",
            "lhs": compact,
            "lhs_value": fraction_str(value),
            "claimed": fraction_str(claimed),
            "true": value == claimed,
            "numbers_used": numbers,
            "n_ops": len(ops),
        }
    return None


def parse_countdown_trace(text: str) -> list[dict[str, Any]]:
    """Every arithmetic claim in `text`, in order.

    Args:
        text: any free text (a model's completion, a generated trace).

    Returns:
        A list of ``{"start", "end", "expr", "lhs", "lhs_value", "claimed", "true",
        "numbers_used", "n_ops"}``; ``text[start:end]`` is the claim as written, ``expr`` is
        it without spaces (``"4*5=20"``), ``lhs_value`` and ``claimed`` are exact values as
        strings, ``true`` says whether they are equal, ``numbers_used`` lists the literals of
        the left side in order. Never raises on str input.
    """
    if not isinstance(text, str):
        return []
    text = text[:MAX_TRACE_CHARS]
    claims = []
    for m in re.finditer("=", text):
        claim = _claim_at(text, m.start())
        if claim is not None:
            claims.append(claim)
    return claims
