"""Countdown SFT traces in four styles, each with exact ground-truth events.

* ``cot``: a seeded depth-first search. At each state the children are tried in a seeded order;
  a child that is a true dead end (`is_dead_end`) is explored briefly (for two numbers every
  candidate is computed and checked against the target; for more, one deeper move) and then
  abandoned with an explicit backtrack; the first child that can still reach the target with
  whole numbers is followed. ``max_expansions`` caps the dead ends explored; after that the
  search goes straight down a solvable path. So every backtrack leaves a genuine dead end, and
  every check states a true fact. Ends with a verification of the whole expression.
* ``nocot``: the answer only.
* ``lowq``: straight to an answer without checks; with probability ``lowq_error_rate`` it
  stops at a plausible wrong candidate (honest arithmetic, wrong value: ``near_miss``) or
  claims the target after a slip (``false_claim``).
* ``verbose``: as many words as ``cot`` for the same seed, restating the problem instead of
  searching: no steps, checks or backtracks, then the correct answer.
"""

from __future__ import annotations

import random
from typing import Any

from sftlens.tasks._countdown_solve import (
    Item,
    Move,
    apply_move,
    int_moves,
    int_solvable,
    is_dead_end,
    solve_countdown,
)

STYLES = ("cot", "nocot", "lowq", "verbose")
DEFAULT_MAX_EXPANSIONS = 3
DEFAULT_LOWQ_ERROR_RATE = 0.3
SCAN_FOR_DEAD = 8  # moves examined when looking for a dead end to show first

HEADER = "Numbers: {nums}. Target: {t}.\n"
STEP = (
    "Try {e}. Left: {s}.",
    "Try {e}, leaving {s}.",
    "{e}. Left: {s}.",
    "Take {e}. Now {s}.",
    "Next, {e}. Left: {s}.",
)
MISS = (
    "{e}, not {t}.",
    "{e}, no.",
    "{e}, too {cmp}.",
    "{e} misses {t}.",
    "{e} is not {t}.",
    "{e}, which is not {t}.",
)
HIT = (
    "{e}, that is the target!",
    "{e}. Yes, {t}!",
    "{e}, which matches {t}.",
    "{e}. Found {t}.",
    "{e}, equal to the target.",
)
FINAL = (
    "Check: {E} = {t}. Correct.",
    "Let me check: {E} = {t}. Yes, that matches the target.",
    "Verify: {E} = {t}. It works.",
    "Double-check: {E} = {t}, which is the target.",
    "Checking the whole expression: {E} = {t}. Right.",
)
BACK = (
    "Dead end, going back.",
    "That doesn't work, let me go back.",
    "Dead end. Backtrack to {p}.",
    "No way to reach {t} from here, so I'll try something else.",
    "{c} cannot make {t}. Back up.",
    "This branch fails. Return to {p}.",
    "Nothing here gives {t}. Going back to {p}.",
)
# A second phrase bank for the same events, in words the tagger's rule tests never use
# (paraphrases, other openings): tagging traces rendered with it measures the rules on wording
# they were not written from, instead of on their own phrases.
HIT_HELDOUT = (
    "{e}: exactly {t}!",
    "{e} lands on {t}.",
    "{e} gives the {t} we need.",
    "{e}; that is {t}, as needed.",
)
MISS_HELDOUT = (
    "{e}, {side} {t}.",
    "{e} does not reach {t}.",
    "{e}: off from {t}.",
    "{e}, so not the {t} we want.",
)
FINAL_HELDOUT = (
    "Confirming: {E} evaluates to {t}, as required.",
    "Sanity check: {E} gives {t}. Good.",
    "Plugging the expression back in, {E} comes to {t}.",
    "Re-evaluating {E}: {t}. Confirmed.",
    "To be sure, {E} = {t}. It checks out.",
)
BACK_HELDOUT = (
    "This route is hopeless, so I abandon it and return to {p}.",
    "Scrap that: {c} can never give {t}. Returning to {p}.",
    "No luck on this path. Retreating to {p} to pick another move.",
    "Stuck here, so I discard this branch.",
    "That line of attack fails; starting over from {p}.",
    "{c} leads nowhere. Undoing it, back at {p}.",
)
PHRASE_BANKS = {
    "default": {"hit": HIT, "miss": MISS, "final": FINAL, "back": BACK},
    "heldout": {"hit": HIT_HELDOUT, "miss": MISS_HELDOUT, "final": FINAL_HELDOUT,
                "back": BACK_HELDOUT},
}  # fmt: skip
PHRASINGS = tuple(PHRASE_BANKS)

PAD = (
    "The numbers are {list}.",
    "The target is {t}.",
    "We must make {t} from {list}.",
    "There are {k} numbers to use.",
    "Each number is used exactly once.",
    "The allowed operations are {opnames}.",
    "Parentheses can group parts of the expression.",
    "The goal is one expression whose value is {t}.",
    "The largest number is {hi} and the smallest is {lo}.",
    "All of {list} must appear in the expression.",
    "The final expression goes inside the answer tags.",
    "So the task is to reach {t} using {list}.",
    "Restating the problem: numbers {list}, target {t}.",
    "The order of the numbers can be changed.",
    "Every number appears in the expression once.",
    "The result has to be exactly {t}.",
)
_OP_NAMES = {"+": "addition", "-": "subtraction", "*": "multiplication", "/": "division"}


class _Builder:
    """Appends text and records events with char offsets into the final response."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.events: list[dict[str, Any]] = []

    def add(self, text: str) -> tuple[int, int]:
        start = self.n
        self.parts.append(text)
        self.n += len(text)
        return start, self.n

    def event(self, kind: str, span: tuple[int, int], **fields: Any) -> None:
        self.events.append({"type": kind, "start": span[0], "end": span[1], **fields})

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _nums(items: list[Item]) -> str:
    return " ".join(str(it.value) for it in items)


def _vals(items: list[Item]) -> list[int]:
    return [it.value for it in items]


class _CotWriter:
    """One `cot` trace: the seeded search, written as it goes."""

    def __init__(
        self,
        numbers: list[int],
        target: int,
        ops: str,
        rng: random.Random,
        max_expansions: int,
        phrasing: str = "default",
    ) -> None:
        self.t, self.ops, self.rng = target, ops, rng
        self.bank = PHRASE_BANKS[phrasing]
        # Another bank draws its wording from a stream of its own, while the search's stream
        # draws as the default bank would: the same search and events, other words.
        self.words = random.Random(f"{phrasing}|{rng.getstate()[1][:8]}")
        self.last = {"back": "", "back_words": ""}
        self.budget = max_expansions
        self.b = _Builder()
        self.root = [Item(n, str(n)) for n in numbers]
        # Dead ends worth showing keep their numbers small (a tiny model reads digits one by one).
        self.limit = max(2 * target, max(numbers))

    def write(self) -> tuple[str, list[dict], str]:
        self.b.add("<think>\n")
        self.b.add(HEADER.format(nums=_nums(self.root), t=self.t))
        final = self._descend(self.root)
        self.b.add("\n")
        span = self.b.add(self._pick("final").format(E=final.expr, t=self.t))
        self.b.event("verify", span, expr=final.expr, value=str(self.t), target=self.t, holds=True)
        self.b.add(f"\n</think>\n<answer>{final.expr}</answer>")
        return self.b.text, self.b.events, final.expr

    def _pick(self, kind: str) -> str:
        """A phrase of `kind` (``hit``, ``miss``, ``final``, ``back``) from the bank."""
        options = PHRASE_BANKS["default"][kind]
        if kind == "back":
            # Never the same wording twice in a row (a double backtrack reads as a template).
            options = [p for p in options if p != self.last["back"]]
        chosen = self.rng.choice(options)
        if kind == "back":
            self.last["back"] = chosen
        if self.bank is PHRASE_BANKS["default"]:
            return chosen
        options = [p for p in self.bank[kind] if p != self.last["back_words"]]
        chosen = self.words.choice(options)
        if kind == "back":
            self.last["back_words"] = chosen
        return chosen

    def _step(self, items: list[Item], move: Move) -> list[Item]:
        """Write one step line into a new state and return it."""
        child = apply_move(items, move)
        line = self.rng.choice(STEP).format(e=move.text, s=_nums(child))
        span = self.b.add(line)
        dead = is_dead_end(_vals(child), self.t, self.ops)
        self.b.event("step", span, expr=move.text, state=_vals(child), dead_end=dead)
        self.b.add("\n")
        return child

    def _candidate(self, move: Move) -> bool:
        """Write ``a op b = v`` with its check against the target; True when it hits."""
        hit = move.result == self.t
        phrase = self._pick("hit" if hit else "miss")
        cmp = "small" if move.result < self.t else "big"
        side = "below" if move.result < self.t else "above"
        start = self.b.n
        span = self.b.add(phrase.format(e=move.text, t=self.t, cmp=cmp, side=side))
        # The equation sits at the start of every phrase, so its offsets are known.
        eq = (start, start + len(move.text))
        self.b.event("step", eq, expr=move.text, state=[move.result], dead_end=not hit)
        self.b.event(
            "verify", span, expr=f"{move.a}{move.op}{move.b}", value=str(move.result),
            target=self.t, holds=hit,
        )  # fmt: skip
        return hit

    def _backtrack(self, items: list[Item], parent: list[Item]) -> None:
        phrase = self._pick("back").format(c=_nums(items), p=_nums(parent), t=self.t)
        span = self.b.add(phrase)
        self.b.event(
            "backtrack", span, from_state=_vals(items), to_state=_vals(parent),
            dead_end=is_dead_end(_vals(items), self.t, self.ops),
        )  # fmt: skip
        self.b.add("\n")

    def _descend(self, items: list[Item]) -> Item:
        """Search a state that can reach the target; returns the final item."""
        moves = int_moves(_vals(items), self.ops)
        self.rng.shuffle(moves)
        if len(items) == 2:
            # Candidates in seeded order, each checked, until one hits (huge misses unsaid).
            shown = [m for m in moves if m.result == self.t or m.result <= 2 * self.limit]
            for k, mv in enumerate(shown):
                if k:
                    self.b.add(" ")
                if self._candidate(mv):
                    return apply_move(items, mv)[0]
            raise AssertionError("a solvable two-number state has a hitting move")
        if self.budget > 0 and (items is self.root or self.rng.random() < 0.5):
            # Show a dead end first at the root (and often deeper), so the search meets one
            # whenever the problem has one worth showing. Looks at a few small moves only:
            # proving a big state dead is the costly part of rendering.
            small = [m for m in moves if m.result <= self.limit][:SCAN_FOR_DEAD]
            dead = next((m for m in small if self._dead(items, m)), None)
            if dead is not None:
                moves.remove(dead)
                moves.insert(0, dead)
        for mv in moves:
            child_vals = _vals(apply_move(items, mv))
            if int_solvable(child_vals, self.t, self.ops):
                return self._descend(self._step(items, mv))
            # Only true dead ends are explored and abandoned; the rest are not written.
            if self.budget > 0 and mv.result <= self.limit and self._dead(items, mv):
                self.budget -= 1
                self._explore_dead(self._step(items, mv), items)
        raise AssertionError("a solvable state has a solvable child")

    def _dead(self, items: list[Item], move: Move) -> bool:
        return is_dead_end(_vals(apply_move(items, move)), self.t, self.ops)

    def _explore_dead(self, items: list[Item], parent: list[Item]) -> None:
        """Show briefly why a dead-end state fails, then backtrack to `parent`."""
        moves = int_moves(_vals(items), self.ops)
        self.rng.shuffle(moves)
        # Small results first, so the shown candidates and the deeper move stay readable.
        moves.sort(key=lambda m: m.result > self.limit)
        if len(items) == 2:
            shown = [m for m in moves if m.result <= 2 * self.limit] or moves[:1]
            for k, mv in enumerate(shown):
                if k:
                    self.b.add(" ")
                self._candidate(mv)
            self.b.add("\n")
        elif len(items) > 2 and moves:
            # Children of a dead end are dead ends: go one move deeper, then come back.
            self._explore_dead(self._step(items, moves[0]), items)
        self._backtrack(items, parent)


def render_cot(
    numbers: list[int],
    target: int,
    ops: str,
    rng: random.Random,
    max_expansions: int,
    phrasing: str = "default",
) -> tuple[str, list[dict], str]:
    """``(response, events, answer)`` of a `cot` trace, its behaviour sentences drawn from the
    `phrasing` phrase bank (`PHRASE_BANKS`)."""
    return _CotWriter(numbers, target, ops, rng, max_expansions, phrasing).write()


def render_nocot(answer: str) -> tuple[str, list[dict]]:
    """The answer only; no events."""
    return f"<answer>{answer}</answer>", []


def _random_path(
    items: list[Item], rng: random.Random, ops: str
) -> list[tuple[Move, list[Item]]] | None:
    """A random sequence of whole-number moves down to one number (None when stuck)."""
    path = []
    while len(items) > 1:
        moves = int_moves(_vals(items), ops)
        if not moves:
            return None
        mv = rng.choice(moves)
        items = apply_move(items, mv)
        path.append((mv, items))
    return path


def _solution_path(items: list[Item], target: int, ops: str, rng: random.Random):
    path = []
    while len(items) > 1:
        moves = int_moves(_vals(items), ops)
        rng.shuffle(moves)
        mv = next(m for m in moves if int_solvable(_vals(apply_move(items, m)), target, ops))
        items = apply_move(items, mv)
        path.append((mv, items))
    return path


def render_lowq(
    numbers: list[int], target: int, ops: str, rng: random.Random, error_rate: float
) -> tuple[str, list[dict], str, str | None]:
    """``(response, events, answer, error)``: a sloppy trace; ``error`` is None, ``"near_miss"``
    or ``"false_claim"``."""
    root = [Item(n, str(n)) for n in numbers]
    error: str | None = None
    path = _solution_path(root, target, ops, rng)
    if rng.random() < error_rate:
        # The first plausible candidate: the closest miss among a few random tries.
        tries = (_random_path(root, rng, ops) for _ in range(8))
        misses = [p for p in tries if p is not None and p[-1][1][0].value != target]
        if misses:
            path = min(misses, key=lambda p: abs(p[-1][1][0].value - target))
            error = rng.choice(("near_miss", "false_claim"))
    b = _Builder()
    b.add("<think>\n" + HEADER.format(nums=_nums(root), t=target))
    for k, (mv, state) in enumerate(path):
        claimed = mv.result
        if error == "false_claim" and k == len(path) - 1:
            claimed = target  # the slip: the last step "reaches" the target
        text = f"{mv.a}{mv.op}{mv.b}={claimed}"
        vals = [claimed] + _vals(state)[1:]
        span = b.add(text)
        b.event(
            "step", span, expr=text, state=vals, dead_end=is_dead_end(vals, target, ops),
            arith_ok=claimed == mv.result,
        )  # fmt: skip
        b.add(". " if k < len(path) - 1 else ".")
    answer = path[-1][1][0].expr
    b.add(f"\n</think>\n<answer>{answer}</answer>")
    return b.text, b.events, answer, error


def render_verbose(
    numbers: list[int], target: int, ops: str, rng: random.Random, n_words: int, answer: str
) -> tuple[str, list[dict]]:
    """Restatement and padding to about `n_words` words, then `answer`; no events."""
    fields = {
        "list": ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}",
        "t": target,
        "k": len(numbers),
        "opnames": ", ".join(_OP_NAMES[o] for o in ops),
        "hi": max(numbers),
        "lo": min(numbers),
    }
    closing = f"The expression is {answer}."
    head = "<think>\n"
    tail = f"\n</think>\n<answer>{answer}</answer>"
    words = len((head + closing + tail).split())
    lines: list[str] = []
    line: list[str] = []
    pool: list[str] = []
    while words < n_words:
        if not pool:
            pool = list(PAD)
            rng.shuffle(pool)
        sentence = pool.pop().format(**fields)
        line.append(sentence)
        words += len(sentence.split())
        # A few sentences per line, like the cot trace's line structure.
        if len(line) >= rng.randint(2, 3):
            lines.append(" ".join(line))
            line = []
    if line:
        lines.append(" ".join(line))
    lines.append(closing)
    return head + "\n".join(lines) + tail, []


def render_style(
    problem: dict,
    style: str,
    seed: int,
    *,
    max_expansions: int,
    lowq_error_rate: float,
    phrasing: str = "default",
) -> dict:
    """The example dict for one problem in one style (see `CountdownTask.render`)."""
    meta = problem["meta"]
    numbers, target = [int(x) for x in meta["numbers"]], int(meta["target"])
    ops = meta.get("ops", "+-*/")
    pid = problem.get("id") or f"{sorted(numbers)}->{target}"
    rng = random.Random(f"countdown-render|{pid}|{style}|{seed}")
    info: dict[str, Any] = {"seed": seed}
    if style == "cot":
        info["max_expansions"] = max_expansions
        if phrasing != "default":
            info["phrasing"] = phrasing
        response, events, _ = render_cot(numbers, target, ops, rng, max_expansions, phrasing)
    elif style == "nocot":
        answer = problem.get("answer") or solve_countdown(numbers, target, ops)
        response, events = render_nocot(answer)
    elif style == "lowq":
        response, events, _, error = render_lowq(numbers, target, ops, rng, lowq_error_rate)
        info.update(lowq_error_rate=lowq_error_rate, lowq_error=error)
    elif style == "verbose":
        # Length-matched to the cot trace of the same problem and seed.
        cot_rng = random.Random(f"countdown-render|{pid}|cot|{seed}")
        cot, _, answer = render_cot(numbers, target, ops, cot_rng, max_expansions)
        response, events = render_verbose(numbers, target, ops, rng, len(cot.split()), answer)
        info.update(max_expansions=max_expansions, matched_words=len(cot.split()))
    else:
        raise ValueError(style)
    return {
        **problem,
        "meta": {**meta, "render": info},
        "style": style,
        "response": response,
        "events": events,
    }
