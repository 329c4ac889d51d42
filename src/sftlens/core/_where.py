"""A row-filter language that can compare columns and nothing else.

``--where`` filters are user text. They are parsed here by a small recursive-descent parser into
a boolean mask over a table's columns; nothing is ever handed to `eval`, pandas ``eval``/``query``
or the Python parser, so a filter cannot call, import or reach an attribute. The grammar::

    expr    := or
    or      := and (("or" | "|") and)*
    and     := not (("and" | "&") not)*
    not     := ("not" | "~") not | atom
    atom    := "(" expr ")" | operand [cmp operand] | operand ["not"] "in" list
    cmp     := "==" | "!=" | "<" | "<=" | ">" | ">="
    operand := column | number | 'string' | "string" | True | False
    list    := "[" [constant ("," constant)*] "]"   (or parentheses)
    column  := identifier | `any text in backticks`

A bare column is a condition only if it holds true/false values. Anything else (a call, an
attribute, a subscript, arithmetic, ``@name``) is a `DataError` naming the filter, the position
and the columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from sftlens.core._errors import DataError

__all__ = ["parse_where", "where_mask"]

MAX_WHERE_CHARS = 4096
MAX_WHERE_DEPTH = 32
MAX_LIST_ITEMS = 10_000
_KEYWORDS = {"and", "or", "not", "in", "True", "False", "true", "false"}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<bq>`[^`]+`)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|&|\||~)
    )""",
    re.VERBOSE,
)
_CMP = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


class _Bad(Exception):
    """A parse error at a character position (turned into a `DataError` by `parse_where`)."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def _unquote(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise _Bad(f"unexpected {text[start]!r}", start)
        kind = m.lastgroup or ""
        raw = m.group(kind)
        start = m.start(kind)
        if kind == "num":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(value, int) and len(raw) > 20:
                raise _Bad("number too long", start)
            tokens.append(("const", value, start))
        elif kind == "str":
            tokens.append(("const", _unquote(raw), start))
        elif kind == "bq":
            tokens.append(("col", raw[1:-1], start))
        elif kind == "name":
            if raw in ("True", "true"):
                tokens.append(("const", True, start))
            elif raw in ("False", "false"):
                tokens.append(("const", False, start))
            elif raw in _KEYWORDS:
                tokens.append(("kw", raw, start))
            else:
                tokens.append(("col", raw, start))
        else:
            tokens.append(("op", raw, start))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens into a nested-tuple tree."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def at(self, kind: str, *values: Any) -> bool:
        t = self.peek()
        return t is not None and t[0] == kind and (not values or t[1] in values)

    def pos(self) -> int:
        t = self.peek()
        return t[2] if t is not None else len(self.text)

    def take(self) -> tuple[str, Any, int]:
        t = self.peek()
        if t is None:
            raise _Bad("the filter ends too early", len(self.text))
        self.i += 1
        return t

    def expect(self, kind: str, value: Any) -> None:
        if not self.at(kind, value):
            raise _Bad(f"expected {value!r}", self.pos())
        self.i += 1

    def parse(self) -> tuple:
        if not self.tokens:
            raise _Bad("the filter is empty", 0)
        tree = self.or_()
        if self.peek() is not None:
            raise _Bad(f"unexpected {self.peek()[1]!r}", self.pos())  # type: ignore[index]
        return tree

    def or_(self) -> tuple:
        parts = [self.and_()]
        while self.at("kw", "or") or self.at("op", "|"):
            self.i += 1
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_(self) -> tuple:
        parts = [self.not_()]
        while self.at("kw", "and") or self.at("op", "&"):
            self.i += 1
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def not_(self) -> tuple:
        if self.at("kw", "not") or self.at("op", "~"):
            self.i += 1
            self._enter()
            inner = self.not_()
            self.depth -= 1
            return ("not", inner)
        return self.atom()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_WHERE_DEPTH:
            raise _Bad(f"nested deeper than {MAX_WHERE_DEPTH} levels", self.pos())

    def atom(self) -> tuple:
        if self.at("op", "("):
            self.i += 1
            self._enter()
            inner = self.or_()
            self.depth -= 1
            self.expect("op", ")")
            return inner
        left = self.operand()
        if self.at("op", *_CMP):
            op = self.take()[1]
            right = self.operand()
            if self.at("op", *_CMP):
                raise _Bad(
                    "chained comparisons are not supported; join them with 'and'", self.pos()
                )
            return ("cmp", op, left, right)
        negate = False
        if self.at("kw", "not") and self.i + 1 < len(self.tokens):
            nxt = self.tokens[self.i + 1]
            if nxt[0] == "kw" and nxt[1] == "in":
                self.i += 1
                negate = True
        if self.at("kw", "in"):
            self.i += 1
            if left[0] != "col":
                raise _Bad("'in' needs a column on its left", self.pos())
            return ("in", negate, left, self.const_list())
        return ("bare", left)

    def operand(self) -> tuple:
        t = self.take()
        if t[0] == "col":
            return ("col", t[1], t[2])
        if t[0] == "const":
            return ("const", t[1], t[2])
        raise _Bad(f"expected a column or a constant, got {t[1]!r}", t[2])

    def const_list(self) -> list[Any]:
        if not (self.at("op", "[") or self.at("op", "(")):
            raise _Bad("'in' needs a list of constants, e.g. ['a', 'b']", self.pos())
        close = "]" if self.take()[1] == "[" else ")"
        values: list[Any] = []
        while not self.at("op", close):
            t = self.take()
            if t[0] != "const":
                raise _Bad(f"a list holds constants only, got {t[1]!r}", t[2])
            values.append(t[1])
            if len(values) > MAX_LIST_ITEMS:
                raise _Bad(f"a list holds at most {MAX_LIST_ITEMS} constants", t[2])
            if self.at("op", ","):
                self.i += 1
            elif not self.at("op", close):
                raise _Bad(f"expected ',' or {close!r}", self.pos())
        self.i += 1
        return values


def _fail(where: str, message: str, columns: Sequence[str], pos: int | None = None) -> DataError:
    at = f" at character {pos + 1}" if pos is not None else ""
    cols = ", ".join(map(str, columns)) or "none"
    return DataError(
        f"row filter {where!r}{at}: {message}; write comparisons of the columns ({cols}) with "
        "constants joined by and/or/not, e.g. \"position_kind == 'step_end' and dead_end == 1\"."
    )


def parse_where(where: str, columns: Sequence[str] = ()) -> tuple:
    """Parse a filter into a tree; a filter outside the grammar raises `DataError`.

    Args:
        where: the filter text.
        columns: the known columns, named in the error message.
    """
    if len(where) > MAX_WHERE_CHARS:
        raise _fail(where[:40] + "...", f"longer than {MAX_WHERE_CHARS} characters", columns)
    try:
        return _Parser(where).parse()
    except _Bad as e:
        raise _fail(where, str(e), columns, e.pos) from None


def _column(frame: Any, name: str, where: str, columns: Sequence[str], pos: int) -> np.ndarray:
    if name not in columns:
        raise _fail(where, f"no column {name!r}", columns, pos)
    return np.asarray(frame[name])


def _values(node: tuple, frame: Any, where: str, columns: Sequence[str]) -> Any:
    if node[0] == "col":
        return _column(frame, node[1], where, columns, node[2])
    return node[1]


def _eval(node: tuple, frame: Any, n: int, where: str, columns: Sequence[str]) -> np.ndarray:
    kind = node[0]
    if kind == "or":
        out = np.zeros(n, dtype=bool)
        for part in node[1]:
            out |= _eval(part, frame, n, where, columns)
        return out
    if kind == "and":
        out = np.ones(n, dtype=bool)
        for part in node[1]:
            out &= _eval(part, frame, n, where, columns)
        return out
    if kind == "not":
        return ~_eval(node[1], frame, n, where, columns)
    if kind == "bare":
        operand = node[1]
        if operand[0] != "col":
            raise _fail(where, f"{operand[1]!r} is not a condition", columns, operand[2])
        values = _column(frame, operand[1], where, columns, operand[2])
        if values.dtype != bool:
            raise _fail(
                where,
                f"column {operand[1]!r} is not true/false; compare it, e.g. {operand[1]} == 1",
                columns,
                operand[2],
            )
        return values.copy()
    if kind == "in":
        _, negate, col, values = node
        data = _column(frame, col[1], where, columns, col[2])
        mask = np.zeros(n, dtype=bool)
        for v in values:
            mask |= _compare(np.equal, data, v, where, columns, col[2])
        return ~mask if negate else mask
    _, op, left, right = node
    a = _values(left, frame, where, columns)
    b = _values(right, frame, where, columns)
    return _compare(_CMP[op], a, b, where, columns, left[2], n)


def _compare(
    fn: Any, a: Any, b: Any, where: str, columns: Sequence[str], pos: int, n: int | None = None
) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(fn(a, b))
    except TypeError:
        raise _fail(
            where, "compares values of different types (text with a number?)", columns, pos
        ) from None
    if result.dtype != bool:
        raise _fail(where, "is not a true/false comparison", columns, pos)
    if result.ndim == 0:
        # Two constants compared: the same answer for every row.
        size = n if n is not None else 1
        return np.full(size, bool(result))
    return result


def where_mask(frame: Any, where: str | None) -> np.ndarray:
    """Boolean mask of the rows of `frame` (a DataFrame) that `where` keeps; all rows when empty.

    Args:
        frame: a pandas DataFrame (or any mapping of column name to a length-``n`` array with a
            ``columns`` attribute and ``len``).
        where: the filter text (see the module docstring for the grammar).

    Returns:
        ``[n]`` bool array.

    Raises:
        DataError: the filter is outside the grammar, names a missing column, or compares
            values that cannot be compared; the message names the filter and the columns.
    """
    n = len(frame)
    if where is None or not where.strip():
        return np.ones(n, dtype=bool)
    columns = [str(c) for c in frame.columns]
    tree = parse_where(where, columns)
    mask = _eval(tree, frame, n, where, columns)
    if mask.shape != (n,):
        mask = np.broadcast_to(mask, (n,)).copy()
    return mask
