"""Countdown search: the dead-end oracle, integer moves for traces, and the solver.

Two notions of reachability, both memoized on the sorted state:

* `is_dead_end` uses the verifier's full semantics (exact rationals, negative intermediates,
  either operand order): a state is a dead end when NO expression using each of its numbers
  once makes the target. This is the ground truth for backtracking.
* `int_path` restricts moves to positive whole intermediates (``big-small``, exact division):
  the moves a readable trace makes. Every problem is solvable this way by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from sftlens.tasks._countdown_verify import ALL_OPS

MAX_STATE = 7  # is_dead_end refuses larger states (the search is exponential in their size)


Num = int | Fraction  # whole values stay ints: Fraction arithmetic is ~20x slower


def _div(a: Num, b: Num) -> Num:
    if isinstance(a, int) and isinstance(b, int):
        return a // b if a % b == 0 else Fraction(a, b)
    return Fraction(a) / b


def _results(a: Num, b: Num, ops: str) -> Iterator[Num]:
    """Every value of ``a op b`` and ``b op a`` (no division by zero)."""
    if "+" in ops:
        yield a + b
    if "-" in ops:
        yield a - b
        yield b - a
    if "*" in ops:
        yield a * b
    if "/" in ops:
        if b != 0:
            yield _div(a, b)
        if a != 0:
            yield _div(b, a)


def _reaches2(a: Num, b: Num, t: Num, ops: str) -> bool:
    """Whether two numbers make `t`, by integer comparisons wherever possible."""
    a_int, b_int = type(a) is int, type(b) is int
    if a_int and b_int:
        return (
            ("+" in ops and a + b == t)
            or ("-" in ops and (a - b == t or b - a == t))
            or ("*" in ops and a * b == t)
            or ("/" in ops and ((b != 0 and a == t * b) or (a != 0 and b == t * a)))
        )
    if type(t) is int and (a_int or b_int):
        # f = p/q (q > 1) with an integer c can only make an integer as f*c or c/f:
        # f+c, f-c, c-f are never whole, and f/c = t would need q | p.
        f, c = (b, a) if a_int else (a, b)
        p, q = f.numerator, f.denominator
        return ("*" in ops and p * c == t * q) or ("/" in ops and c * q == t * p)
    return (
        ("+" in ops and a + b == t)
        or ("-" in ops and (a - b == t or b - a == t))
        or ("*" in ops and a * b == t)
        or ("/" in ops and ((b != 0 and a == t * b) or (a != 0 and b == t * a)))
    )


@lru_cache(maxsize=1 << 20)
def _reaches(state: tuple[Num, ...], target: Num, ops: str) -> bool:
    """Whether some expression using each number of `state` once equals `target`."""
    n = len(state)
    if n == 1:
        return state[0] == target
    if n == 2:
        return _reaches2(state[0], state[1], target, ops)
    if n == 3:
        # Unrolled: the bulk of every search, worth avoiding tuples and the cache.
        x, y, z = state
        for a, b, rest in ((x, y, z), (x, z, y), (y, z, x)):
            for r in _results(a, b, ops):
                if _reaches2(r, rest, target, ops):
                    return True
        return False
    seen: set[tuple[Num, Num]] = set()
    for i in range(n):
        for j in range(i + 1, n):
            # Equal pairs give equal children: skip repeats (states are sorted multisets).
            if (state[i], state[j]) in seen:
                continue
            seen.add((state[i], state[j]))
            rest = state[:i] + state[i + 1 : j] + state[j + 1 :]
            for r in set(_results(state[i], state[j], ops)):
                if _reaches(tuple(sorted(rest + (r,))), target, ops):
                    return True
    return False


def _norm(x: int | Fraction) -> Num:
    x = Fraction(x)
    return int(x) if x.denominator == 1 else x


def is_dead_end(numbers_left: Iterable[int | Fraction], target: int, ops: str = ALL_OPS) -> bool:
    """Whether `target` is unreachable from a partial state (memoized).

    Args:
        numbers_left: the numbers still to combine (ints or Fractions), each used exactly once.
        target: the number to make.
        ops: the allowed operators.

    Returns:
        True when no expression over `numbers_left` (exact rationals) equals `target`; an empty
        state is a dead end.

    Raises:
        ValueError: more than `MAX_STATE` numbers (the exhaustive search would not finish).
    """
    state = tuple(sorted(_norm(x) for x in numbers_left))
    if not state:
        return True
    if len(state) > MAX_STATE:
        raise ValueError(f"state of {len(state)} numbers is larger than {MAX_STATE}")
    return not _reaches(state, _norm(target), ops)


@dataclass(frozen=True)
class Item:
    """One number of a state with the expression that produced it (prec: 3 atom, 2 */, 1 +-)."""

    value: int
    expr: str
    prec: int = 3


@dataclass(frozen=True)
class Move:
    """A positive-integer move ``a op b = result`` taking items ``i`` and ``j`` of a state."""

    i: int
    j: int
    op: str
    a: int
    b: int
    result: int

    @property
    def text(self) -> str:
        return f"{self.a}{self.op}{self.b}={self.result}"


def int_moves(values: tuple[int, ...] | list[int], ops: str = ALL_OPS) -> list[Move]:
    """Distinct positive-integer moves from a state: ``a+b``, ``big-small`` (> 0), ``a*b``,
    ``big/small`` (exact). Duplicates by value (same op on the same pair of values) are dropped."""
    out: list[Move] = []
    seen: set[tuple[str, int, int]] = set()
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            x, y = values[i], values[j]
            hi, lo = (x, y) if x >= y else (y, x)
            hi_i, lo_i = (i, j) if x >= y else (j, i)
            cands = []
            if "+" in ops:
                cands.append((i, j, "+", x, y, x + y))
            if "-" in ops and hi > lo:
                cands.append((hi_i, lo_i, "-", hi, lo, hi - lo))
            if "*" in ops:
                cands.append((i, j, "*", x, y, x * y))
            if "/" in ops and lo > 0 and hi % lo == 0:
                cands.append((hi_i, lo_i, "/", hi, lo, hi // lo))
            for c in cands:
                key = (c[2], max(c[3], c[4]), min(c[3], c[4]))
                if key not in seen:
                    seen.add(key)
                    out.append(Move(*c))
    return out


def combine(x: Item, y: Item, op: str, result: int) -> Item:
    """The item for ``x op y`` with the fewest parentheses that keep its value."""
    left, right = x.expr, y.expr
    if op == "+":
        return Item(result, f"{left}+{right}", 1)
    if op == "-":
        return Item(result, f"{left}-{_paren(right, y.prec <= 1)}", 1)
    if op == "*":
        return Item(result, f"{_paren(left, x.prec <= 1)}*{_paren(right, y.prec <= 1)}", 2)
    return Item(result, f"{_paren(left, x.prec <= 1)}/{_paren(right, y.prec <= 2)}", 2)


def _paren(expr: str, needed: bool) -> str:
    return f"({expr})" if needed else expr


def apply_move(items: list[Item], move: Move) -> list[Item]:
    """The state after `move`: the new item first, then the untouched ones in order."""
    new = combine(items[move.i], items[move.j], move.op, move.result)
    return [new] + [it for k, it in enumerate(items) if k not in (move.i, move.j)]


@lru_cache(maxsize=1 << 18)
def _int_path(
    state: tuple[int, ...], target: int, ops: str
) -> tuple[tuple[str, int, int], ...] | None:
    """A positive-integer solution from a sorted state as ``(op, a, b)`` moves, or None."""
    if len(state) == 1:
        return () if state[0] == target else None
    for mv in int_moves(state, ops):
        rest = [v for k, v in enumerate(state) if k not in (mv.i, mv.j)]
        sub = _int_path(tuple(sorted(rest + [mv.result])), target, ops)
        if sub is not None:
            return ((mv.op, mv.a, mv.b), *sub)
    return None


def int_solvable(values: Iterable[int], target: int, ops: str = ALL_OPS) -> bool:
    """Whether the state can reach `target` with positive whole intermediates only."""
    return _int_path(tuple(sorted(values)), int(target), ops) is not None


def solve_countdown(numbers: Iterable[int], target: int, ops: str = ALL_OPS) -> str | None:
    """An expression using each number once that equals `target`, or None when there is none.

    Prefers a solution with positive whole intermediates (what a person would write); falls back
    to exact rational search (e.g. ``[1, 3, 4, 6] -> 24`` needs ``6/(1-3/4)``).
    """
    items = [Item(int(v), str(int(v))) for v in numbers]
    target = int(target)
    if not items:
        return None
    path = _int_path(tuple(sorted(it.value for it in items)), target, ops)
    if path is not None:
        for op, a, b in path:
            # Replay by value: find the two items with these values.
            i = next(k for k, it in enumerate(items) if it.value == a)
            j = next(k for k, it in enumerate(items) if it.value == b and k != i)
            items = apply_move(items, Move(i, j, op, a, b, _apply(op, a, b)))
        return items[0].expr
    return _rational_solution(
        [(Fraction(it.value), it.expr, 3) for it in items], Fraction(target), ops
    )


def _apply(op: str, a: int, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]


def _rational_solution(
    items: list[tuple[Fraction, str, int]], target: Fraction, ops: str
) -> str | None:
    """Exhaustive search over exact rationals (used only when no whole-number solution exists)."""
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    key = tuple(sorted(_norm(v) for v, _, _ in items))
    if len(items) > MAX_STATE or not _reaches(key, _norm(target), ops):
        return None
    for i in range(len(items)):
        for j in range(len(items)):
            if i == j:
                continue
            (a, ea, pa), (b, eb, pb) = items[i], items[j]
            rest = [it for k, it in enumerate(items) if k not in (i, j)]
            for op in ops:
                if op == "/" and b == 0:
                    continue
                if op in "+*" and i > j:
                    continue  # commutative: one order is enough
                val = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
                if op == "+":
                    expr, prec = f"{ea}+{eb}", 1
                elif op == "-":
                    expr, prec = f"{ea}-{_paren(eb, pb <= 1)}", 1
                elif op == "*":
                    expr, prec = f"{_paren(ea, pa <= 1)}*{_paren(eb, pb <= 1)}", 2
                else:
                    expr, prec = f"{_paren(ea, pa <= 1)}/{_paren(eb, pb <= 2)}", 2
                found = _rational_solution([(val, expr, prec)] + rest, target, ops)
                if found is not None:
                    return found
    return None
