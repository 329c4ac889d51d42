"""The Countdown verifier: a bounded tokenizer and recursive-descent parser over exact rationals.

Semantics (the conventional game, made exact):

* the answer is the content of the LAST complete ``<answer>...</answer>`` in a completion;
* it may contain only ASCII digits, ``+ - * /``, parentheses and spaces; no names, no exponent
  (``**``), no decimals or scientific notation (``1e9``), no unicode digits;
* every given number is used exactly once (as a multiset: ``[3, 3]`` needs two 3s);
* arithmetic is exact (`fractions.Fraction`), so ``7/2*2`` is 7; division by zero is wrong;
* unary minus (and unary plus) is rejected, as in the conventional game: ``-3+5`` is malformed,
  while a negative intermediate written as a binary subtraction (``(3-5)*...``) is fine;
* numbers are written without leading zeros (``07`` is malformed).

Nothing is ever executed: the parser builds a value from tokens. Input length and parenthesis
depth are bounded before parsing, so hostile strings (``__import__('os')``, 10k nested
parentheses, megabyte inputs) are scored wrong, never crash.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

ALL_OPS = "+-*/"
MAX_EXPR_CHARS = 200  # longer answers are rejected before tokenizing
MAX_DEPTH = 40  # parenthesis nesting bound: keeps the recursive descent far from the stack limit
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

# ASCII digits only (str.isdigit would let unicode digits in); ``**`` is caught before ``*``.
_TOKEN_RE = re.compile(r"[ \t]*(?:([0-9]+)|(\*\*)|([-+*/()])|(.))", re.DOTALL)
# Lenient spellings accepted only when reading free-text traces (never by the answer verifier).
_LENIENT_TABLE = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "\n": " "})


class ExprError(ValueError):
    """A malformed or disallowed expression (the message says what is wrong)."""


def tokenize(
    text: str, *, ops: str = ALL_OPS, lenient: bool = False
) -> list[tuple[str, Any, int, int]]:
    """Split an expression into ``(kind, value, start, end)`` tokens.

    Kinds are ``num`` (value: int), ``op`` (value: one of `ops`), ``(`` and ``)``.

    Raises:
        ExprError: on any character outside digits, the allowed operators, parentheses and
            spaces; on ``**``; on a number with a leading zero; on nesting deeper than
            `MAX_DEPTH`.
    """
    if lenient:
        text = text.translate(_LENIENT_TABLE)  # one character for one: offsets are kept
    tokens: list[tuple[str, Any, int, int]] = []
    depth = 0
    # Every position matches one alternative, so the matches tile the (right-stripped) text.
    for m in _TOKEN_RE.finditer(text.rstrip(" \t")):
        num, power, sym, bad = m.groups()
        if num is not None:
            if len(num) > 1 and num[0] == "0":
                raise ExprError(f"number {num!r} has a leading zero")
            tokens.append(("num", int(num), m.start(1), m.end(1)))
        elif sym is not None:
            at = m.start(3)
            if sym in "()":
                depth += 1 if sym == "(" else -1
                if depth > MAX_DEPTH:
                    raise ExprError(f"parentheses nested deeper than {MAX_DEPTH}")
                tokens.append((sym, sym, at, at + 1))
            elif sym not in ops:
                raise ExprError(f"operator {sym!r} is not allowed (allowed: {' '.join(ops)})")
            else:
                tokens.append(("op", sym, at, at + 1))
        elif power is not None:
            raise ExprError("exponent '**' is not allowed")
        else:
            raise ExprError(f"character {bad!r} at {m.start(4)} is not allowed")
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := NUMBER | '(' expr ')'. No unary operators."""

    def __init__(self, tokens: list[tuple[str, Any, int, int]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.numbers: list[int] = []
        self.ops: list[str] = []

    def _peek(self) -> tuple[str, Any, int, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> Fraction:
        if not self.tokens:
            raise ExprError("empty expression")
        value = self._expr()
        if self.pos != len(self.tokens):
            tok = self.tokens[self.pos]
            raise ExprError(f"unexpected {tok[1]!r} at {tok[2]}")
        return value

    def _expr(self) -> Fraction:
        value = self._term()
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in "+-":
            self.pos += 1
            self.ops.append(tok[1])
            rhs = self._term()
            value = value + rhs if tok[1] == "+" else value - rhs
        return value

    def _term(self) -> Fraction:
        value = self._factor()
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in "*/":
            self.pos += 1
            self.ops.append(tok[1])
            rhs = self._factor()
            if tok[1] == "*":
                value = value * rhs
            else:
                if rhs == 0:
                    raise ExprError("division by zero")
                value = value / rhs
        return value

    def _factor(self) -> Fraction:
        tok = self._peek()
        if tok is None:
            raise ExprError("expression ends early")
        if tok[0] == "num":
            self.pos += 1
            self.numbers.append(tok[1])
            return Fraction(tok[1])
        if tok[0] == "(":
            self.pos += 1
            value = self._expr()
            close = self._peek()
            if close is None or close[0] != ")":
                raise ExprError("unbalanced '('")
            self.pos += 1
            return value
        if tok[0] == "op" and tok[1] in "+-":
            raise ExprError(f"unary {tok[1]!r} at {tok[2]} is not allowed")
        raise ExprError(f"unexpected {tok[1]!r} at {tok[2]}")


def evaluate(
    text: str, *, ops: str = ALL_OPS, lenient: bool = False
) -> tuple[Fraction, list[int], list[str]]:
    """Evaluate an arithmetic expression exactly, without executing anything.

    Args:
        text: the expression, e.g. ``"(7-3)*5+2"``.
        ops: the operators allowed.
        lenient: also accept ``×`` ``÷`` and unicode minus (for reading free-text traces).

    Returns:
        ``(value, numbers, ops_used)``: the exact value, the number literals in order, and the
        operators in parse order.

    Raises:
        ExprError: malformed, disallowed, too long, too deep, or division by zero.
    """
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"longer than {MAX_EXPR_CHARS} characters")
    parser = _Parser(tokenize(text, ops=ops, lenient=lenient))
    value = parser.parse()
    return value, parser.numbers, parser.ops


def fraction_str(value: Fraction) -> str:
    """``Fraction(22)`` -> ``"22"``, ``Fraction(7, 2)`` -> ``"7/2"``."""
    return str(value)


def verify_countdown(
    expression: str, numbers: list[int], target: int, ops: str = ALL_OPS
) -> dict[str, Any]:
    """Check a Countdown answer exactly.

    Args:
        expression: the answer expression (already extracted from ``<answer>`` tags).
        numbers: the given numbers; each must be used exactly once.
        target: the number to make.
        ops: the allowed operators (default ``"+-*/"``).

    Returns:
        ``{"correct": bool, "value": str | None, "reason": str}``; ``value`` is the exact value
        as a string (``"7/2"``) whenever the expression parses. Never raises.
    """
    if not isinstance(expression, str):
        return {"correct": False, "value": None, "reason": "answer is not a string"}
    text = expression.strip()
    if not text:
        return {"correct": False, "value": None, "reason": "empty expression"}
    try:
        value, used, _ = evaluate(text, ops=ops)
    except ExprError as e:
        return {"correct": False, "value": None, "reason": f"invalid expression: {e}"}
    shown = fraction_str(value)
    if sorted(used) != sorted(int(x) for x in numbers):
        return {
            "correct": False,
            "value": shown,
            "reason": f"uses {sorted(used)}, but each of {sorted(numbers)} must be used once",
        }
    if value != Fraction(target):
        return {"correct": False, "value": shown, "reason": f"value {shown} is not {target}"}
    return {"correct": True, "value": shown, "reason": "ok"}


def extract_answer(text: str) -> str | None:
    """The stripped content of the LAST complete ``<answer>...</answer>`` in `text`, or None.

    The last closing tag is paired with the last opening tag before it, so a nested
    ``<answer><answer>1</answer></answer>`` yields ``"1</answer>"`` (then rejected by the
    verifier) rather than anything guessed.
    """
    if not isinstance(text, str):
        return None
    close = text.rfind(ANSWER_CLOSE)
    if close < 0:
        return None
    open_ = text.rfind(ANSWER_OPEN, 0, close)
    if open_ < 0:
        return None
    return text[open_ + len(ANSWER_OPEN) : close].strip()
