"""Seeded Countdown problems: solvable by construction, deduplicated, hash-split train/eval.

A problem's split is a function of its canonical key (sorted numbers + target) alone, so the
train and eval splits can never share a problem, whatever ``n``, seed or knobs a call uses.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from sftlens.core import ConfigError
from sftlens.tasks._countdown_solve import Item, Move, apply_move
from sftlens.tasks._countdown_verify import ALL_OPS

SPLITS = ("train", "eval")
EVAL_PERCENT = 20  # share of the canonical-key hash space that belongs to the eval split
PROMPT = (
    "Using the numbers [{numbers}], make {target}. Use each number once with {ops}. "
    "Put the final expression in <answer></answer>."
)
DEFAULT_KNOBS: dict[str, Any] = {
    "min_numbers": 3,
    "max_numbers": 4,
    "min_number": 1,
    "max_number": 20,
    "min_target": 10,
    "max_target": 100,
    "ops": ALL_OPS,
}
HARD_KNOBS: dict[str, Any] = {**DEFAULT_KNOBS, "min_numbers": 5, "max_numbers": 6}
_STALL_LIMIT = 5_000
_MOVE_DRAWS = 20


def canonical_key(numbers: list[int], target: int) -> str:
    """``"2,3,5,7->22"``: the identity of a problem (order of the numbers does not matter)."""
    return ",".join(str(n) for n in sorted(numbers)) + f"->{target}"


def _digest(numbers: list[int], target: int) -> str:
    return hashlib.sha256(("countdown:" + canonical_key(numbers, target)).encode()).hexdigest()


def split_of(numbers: list[int], target: int) -> str:
    """``"eval"`` for `EVAL_PERCENT` % of canonical keys (by hash), else ``"train"``."""
    return "eval" if int(_digest(numbers, target)[:8], 16) % 100 < EVAL_PERCENT else "train"


def problem_id(numbers: list[int], target: int) -> str:
    """``countdown-<12 hex>``, the same for the same problem in any call."""
    return f"countdown-{_digest(numbers, target)[:12]}"


def make_prompt(numbers: list[int], target: int, ops: str = ALL_OPS) -> str:
    """The one prompt template; only the numbers, target and operator list vary."""
    return PROMPT.format(
        numbers=", ".join(str(n) for n in numbers), target=target, ops=" ".join(ops)
    )


def _check_knobs(k: dict[str, Any]) -> None:
    for name in (
        "min_numbers",
        "max_numbers",
        "min_number",
        "max_number",
        "min_target",
        "max_target",
    ):
        if not isinstance(k[name], int) or isinstance(k[name], bool):
            raise ConfigError(f"countdown knob {name}={k[name]!r} must be an integer.")
    if not 2 <= k["min_numbers"] <= k["max_numbers"] <= 6:
        raise ConfigError(
            f"countdown needs 2 <= min_numbers <= max_numbers <= 6; got "
            f"min_numbers={k['min_numbers']}, max_numbers={k['max_numbers']}."
        )
    if not 1 <= k["min_number"] <= k["max_number"]:
        raise ConfigError(
            f"countdown needs 1 <= min_number <= max_number; got {k['min_number']}, {k['max_number']}."
        )
    if not 1 <= k["min_target"] <= k["max_target"]:
        raise ConfigError(
            f"countdown needs 1 <= min_target <= max_target; got {k['min_target']}, {k['max_target']}."
        )
    ops = k["ops"]
    if (
        not isinstance(ops, str)
        or not ops
        or any(c not in ALL_OPS for c in ops)
        or len(set(ops)) != len(ops)
    ):
        raise ConfigError(
            f"countdown knob ops={ops!r} must be a non-empty subset of '+-*/', e.g. '+-*'."
        )


def _construct(numbers: list[int], rng: random.Random, ops: str) -> Item | None:
    """Combine the numbers by random positive-integer moves into one value (the target),
    avoiding trivial moves (``x*1``, ``x/1``) so every number matters."""
    items = [Item(n, str(n)) for n in numbers]
    while len(items) > 1:
        # Draw a pair and an operator until the move is valid (cheaper than listing all moves).
        for _ in range(_MOVE_DRAWS):
            i, j = rng.sample(range(len(items)), 2)
            op = rng.choice(ops)
            x, y = items[i].value, items[j].value
            if op in "-/" and x < y:
                i, j, x, y = j, i, y, x
            if op == "-" and x == y:
                continue
            if op in "*/" and y == 1 or op == "*" and x == 1 or op == "/" and x % y:
                continue
            result = {"+": x + y, "-": x - y, "*": x * y, "/": x // y}[op]
            items = apply_move(items, Move(i, j, op, x, y, result))
            break
        else:
            return None
    return items[0]


def generate_problems(
    n: int, seed: int, split: str = "train", task: str = "countdown", **knobs: Any
) -> list[dict]:
    """`n` distinct Countdown problems of one split, deterministic in `seed` and the knobs.

    Args:
        n: how many problems.
        seed: the seed; same seed and knobs give the same problems.
        split: ``"train"`` or ``"eval"``; only problems whose canonical key hashes to this split
            are kept.
        task: the task name written into each record.
        **knobs: `DEFAULT_KNOBS` overrides (min/max_numbers, min/max_number,
            min/max_target, ops).

    Returns:
        Problem records ``{"id", "task", "prompt", "answer", "meta"}``.

    Raises:
        ConfigError: an unknown or invalid knob, or a problem space too small for `n`.
    """
    unknown = sorted(set(knobs) - set(DEFAULT_KNOBS))
    if unknown:
        raise ConfigError(
            f"unknown countdown knob(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_KNOBS)}."
        )
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"n={n!r} must be a non-negative integer.")
    k = {**DEFAULT_KNOBS, **knobs}
    _check_knobs(k)
    ops = k["ops"]
    rng = random.Random(f"countdown|{seed}|{split}|{sorted(k.items())}")
    out: list[dict] = []
    seen: set[str] = set()
    stalled = 0
    while len(out) < n:
        stalled += 1
        # Many draws in a row without a new problem: the space is (nearly) exhausted.
        if stalled > _STALL_LIMIT:
            raise ConfigError(
                f"found only {len(out)} of {n} distinct {split} countdown problems with {k}; "
                "widen max_number or the target range, or ask for fewer."
            )
        count = rng.randint(k["min_numbers"], k["max_numbers"])
        numbers = [rng.randint(k["min_number"], k["max_number"]) for _ in range(count)]
        built = _construct(numbers, rng, ops)
        if built is None or not k["min_target"] <= built.value <= k["max_target"]:
            continue
        key = canonical_key(numbers, built.value)
        # Dedup before the split test: a key is either always or never in this split.
        if key in seen or split_of(numbers, built.value) != split:
            continue
        seen.add(key)
        stalled = 0
        out.append(
            {
                "id": problem_id(numbers, built.value),
                "task": task,
                "prompt": make_prompt(numbers, built.value, ops),
                "answer": built.expr,
                "meta": {
                    "numbers": numbers,
                    "target": built.value,
                    "split": split,
                    "seed": seed,
                    **k,
                },
            }
        )
    return out
