"""Countdown: make a target from given numbers with + - * /, each number used exactly once.

The in-domain task of the toy world (``countdown``: 3-4 numbers) and its harder variant for
evaluation (``countdown-hard``: 5-6 numbers). Problems come from `_countdown_gen`, traces from
`_countdown_trace`, scoring from the exact verifier in `_countdown_verify`.
"""

from __future__ import annotations

from typing import Any

from sftlens.core import ConfigError, DataError
from sftlens.tasks._countdown_gen import DEFAULT_KNOBS, HARD_KNOBS, generate_problems
from sftlens.tasks._countdown_solve import int_solvable, solve_countdown
from sftlens.tasks._countdown_trace import (
    DEFAULT_LOWQ_ERROR_RATE,
    DEFAULT_MAX_EXPANSIONS,
    PHRASINGS,
    STYLES,
    render_style,
)
from sftlens.tasks._countdown_verify import extract_answer, verify_countdown
from sftlens.tasks._registry import TASKS


@TASKS.register("countdown")
class CountdownTask:
    """Countdown problems, SFT traces in four styles, and exact scoring.

    Args:
        max_expansions: how many dead-end branches a `cot` trace may explore before it goes
            straight down a solvable path (longer traces, more backtracking).
        lowq_error_rate: probability that a `lowq` trace ends with a wrong answer.

    Example:
        >>> task = CountdownTask()
        >>> p = task.generate(1, seed=0)[0]
        >>> ex = task.render(p, "cot", seed=0)
        >>> task.score(p, ex["response"])["correct"]
        True
    """

    name = "countdown"
    styles = STYLES
    default_knobs: dict[str, Any] = DEFAULT_KNOBS

    def __init__(
        self,
        max_expansions: int = DEFAULT_MAX_EXPANSIONS,
        lowq_error_rate: float = DEFAULT_LOWQ_ERROR_RATE,
    ) -> None:
        _check_render_knobs(max_expansions, lowq_error_rate)
        self.max_expansions = max_expansions
        self.lowq_error_rate = lowq_error_rate

    def generate(self, n: int, seed: int, split: str = "train", **knobs: Any) -> list[dict]:
        """`n` distinct problems of `split`, deterministic in `seed` and the knobs.

        Args:
            n: number of problems.
            seed: random seed.
            split: ``"train"`` or ``"eval"``; decided by a hash of the problem (sorted numbers
                and target), so the two splits never share a problem.
            **knobs: ``min_numbers``, ``max_numbers`` (3 and 4 by default; 5 and 6 for
                ``countdown-hard``), ``min_number``, ``max_number`` (1..20), ``min_target``,
                ``max_target`` (10..100), ``ops`` (``"+-*/"``).

        Returns:
            Problem records ``{"id", "task", "prompt", "answer", "meta"}`` where ``meta`` holds
            ``numbers``, ``target``, ``split``, ``seed`` and the knobs.
        """
        return generate_problems(n, seed, split, task=self.name, **{**self.default_knobs, **knobs})

    def render(
        self,
        problem: dict,
        style: str,
        seed: int,
        *,
        max_expansions: int | None = None,
        lowq_error_rate: float | None = None,
        phrasing: str = "default",
    ) -> dict:
        """The problem plus ``response``, ``events`` (ground truth) and ``style``.

        Events carry char offsets into ``response`` (``response[start:end]`` is the move's text):
        ``step`` (``expr`` like ``"7-3=4"``, the resulting ``state``, its ``dead_end``),
        ``backtrack`` (``from_state``, ``to_state``, ``dead_end``: always true for `cot`) and
        ``verify`` (``expr``, its exact ``value``, ``target``, ``holds``: value == target).
        `lowq` steps also carry ``arith_ok``; ``meta["render"]["lowq_error"]`` says how a
        `lowq` trace went wrong (None, ``"near_miss"``, ``"false_claim"``).

        ``phrasing="heldout"`` writes a `cot` trace's checks and backtracks from a second
        phrase bank that the tagger's rule tests never use (same search, same events), to
        measure the tagger on wording it was not written from.
        """
        if phrasing not in PHRASINGS:
            raise ConfigError(f"unknown phrasing {phrasing!r}; known: {', '.join(PHRASINGS)}.")
        if style not in STYLES:
            raise ConfigError(f"unknown countdown style {style!r}; known: {', '.join(STYLES)}.")
        me = self.max_expansions if max_expansions is None else max_expansions
        er = self.lowq_error_rate if lowq_error_rate is None else lowq_error_rate
        _check_render_knobs(me, er)
        numbers, target, ops = _problem_fields(problem)
        if style == "nocot":
            if not problem.get("answer") and solve_countdown(numbers, target, ops) is None:
                raise DataError(
                    f"countdown problem {problem.get('id')!r}: {numbers} cannot make {target}."
                )
        elif not int_solvable(numbers, target, ops):
            raise DataError(
                f"countdown problem {problem.get('id')!r}: {numbers} cannot make {target} with "
                f"whole-number steps, which {style!r} traces need; render it as 'nocot' or drop it."
            )
        return render_style(problem, style, seed, max_expansions=me, lowq_error_rate=er,
                            phrasing=phrasing)  # fmt: skip

    def score(self, problem: dict, completion: str) -> dict:
        """Verify the LAST ``<answer>...</answer>`` of `completion` exactly.

        Returns:
            ``{"correct": bool, "parsed_answer": str | None, "reason": str, "value": str | None}``.
        """
        numbers, target, ops = _problem_fields(problem)
        answer = extract_answer(completion)
        if answer is None:
            return {
                "correct": False,
                "parsed_answer": None,
                "reason": "no <answer>...</answer>",
                "value": None,
            }
        res = verify_countdown(answer, numbers, target, ops)
        return {"correct": res["correct"], "parsed_answer": answer, **res}


@TASKS.register("countdown-hard")
class CountdownHardTask(CountdownTask):
    """Countdown with 5-6 numbers by default (an evaluation set for harder search)."""

    name = "countdown-hard"
    default_knobs = HARD_KNOBS


def _problem_fields(problem: dict) -> tuple[list[int], int, str]:
    """``(numbers, target, ops)`` of a problem record, or a DataError naming what is missing."""
    meta = problem.get("meta") if isinstance(problem, dict) else None
    try:
        numbers = [int(x) for x in meta["numbers"]]
        target = int(meta["target"])
    except (TypeError, KeyError, ValueError):
        pid = problem.get("id") if isinstance(problem, dict) else None
        raise DataError(
            f"countdown problem {pid!r} needs meta.numbers (a list of integers) and meta.target "
            "(an integer)."
        ) from None
    if not 1 <= len(numbers) <= 6:
        raise DataError(f"countdown problem {problem.get('id')!r}: 1 to 6 numbers, got {numbers}.")
    return numbers, target, meta.get("ops", "+-*/")


def _check_render_knobs(max_expansions: Any, lowq_error_rate: Any) -> None:
    if (
        not isinstance(max_expansions, int)
        or isinstance(max_expansions, bool)
        or max_expansions < 0
    ):
        raise ConfigError(f"max_expansions={max_expansions!r} must be a non-negative integer.")
    if not isinstance(lowq_error_rate, (int, float)) or not 0 <= lowq_error_rate <= 1:
        raise ConfigError(f"lowq_error_rate={lowq_error_rate!r} must be between 0 and 1.")
