"""Math answers for real models: the last ``\\boxed{}`` of a completion, checked with math-verify.

math-verify compares answers symbolically (``\\frac{1}{2}`` equals ``0.5``), so a correct answer
in another notation is not marked wrong. Problems come from the user's file (JSONL or parquet
with ``problem``/``question`` and ``answer``/``solution``); there is no math generator.
"""

from __future__ import annotations

import threading
from typing import Any

from sftlens.core import ConfigError, DataError
from sftlens.tasks._loaders import iter_rows
from sftlens.tasks._registry import TASKS

MAX_BOXED_CHARS = 1000  # longer "answers" are not answers; never hand them to the parser
BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (balanced braces), or None."""
    best = None
    for cmd in BOX_COMMANDS:
        i = text.rfind(cmd + "{")
        if i > (best[0] if best else -1):
            best = (i, cmd)
    if best is None:
        return None
    start = best[0] + len(best[1]) + 1
    depth = 1
    for j in range(start, len(text)):
        # Walk to the brace that closes the box; nested braces (\frac{1}{2}) are counted.
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start:j].strip()
    return None


def _timeouts() -> dict[str, Any]:
    # math-verify's timeouts use SIGALRM, which only works in the main thread.
    main = threading.current_thread() is threading.main_thread()
    return {"parsing_timeout": 5 if main else None}


def _parse(latex: str) -> list:
    from math_verify import parse

    return parse(f"${latex}$", **_timeouts())


def score_math(completion: str, answer: str) -> dict:
    """Score a completion's last ``\\boxed{}`` against the reference `answer` with math-verify.

    Args:
        completion: model output.
        answer: the reference, as LaTeX or plain text (``0.5``, ``\\frac{1}{2}``), or a
            solution containing a ``\\boxed{}`` (its last box is the reference).

    Returns:
        ``{"correct": bool, "parsed_answer": str | None, "reason": str}``; reason is ``ok``,
        ``wrong``, ``no_boxed`` (no box in the completion), ``too_long`` or ``unparsable``
        (the reference could not be parsed).
    """
    from math_verify import verify

    pred = last_boxed(completion or "")
    if pred is None:
        return {"correct": False, "parsed_answer": None, "reason": "no_boxed"}
    if len(pred) > MAX_BOXED_CHARS:
        return {"correct": False, "parsed_answer": pred[:MAX_BOXED_CHARS], "reason": "too_long"}
    gold_text = last_boxed(str(answer)) or str(answer).strip().strip("$")
    gold = _parse(gold_text)
    if not gold:
        return {"correct": False, "parsed_answer": pred, "reason": "unparsable"}
    target = _parse(pred)
    timeout = 5 if _timeouts()["parsing_timeout"] else None
    ok = bool(target) and verify(gold, target, timeout_seconds=timeout)
    # Fall back to exact text for answers sympy cannot read (names, words).
    ok = ok or pred.replace(" ", "") == gold_text.replace(" ", "")
    return {"correct": ok, "parsed_answer": pred, "reason": "ok" if ok else "wrong"}


PROBLEM_KEYS = ("problem", "question")
ANSWER_KEYS = ("answer", "solution")


def load_math_problems(path: str) -> list[dict]:
    """Read math problems (JSONL, JSON list or parquet) as problem records of task ``math``.

    Each row needs ``problem`` or ``question``, and ``answer`` or ``solution`` (a solution's
    last ``\\boxed{}`` becomes the answer). ``id`` and ``meta`` pass through; other columns
    (level, subject, ...) go into ``meta``.

    Raises:
        DataError: unreadable file or a row without the keys (names file and line).
    """
    out = []
    for i, (where, row) in enumerate(iter_rows(path)):
        pkey = next((k for k in PROBLEM_KEYS if row.get(k) is not None), None)
        akey = next((k for k in ANSWER_KEYS if row.get(k) is not None), None)
        if pkey is None or akey is None:
            raise DataError(
                f"{where}: expected 'problem' or 'question' and 'answer' or 'solution' "
                f"(has: {', '.join(map(str, row)) or 'none'})."
            )
        answer = str(row[akey])
        if akey == "solution":
            boxed = last_boxed(answer)
            if boxed is None:
                raise DataError(f"{where}: the solution has no \\boxed{{}} answer; add 'answer'.")
            answer = boxed
        meta = dict(row["meta"]) if isinstance(row.get("meta"), dict) else {}
        used = {pkey, akey, "id", "meta"}
        meta.update({k: v for k, v in row.items() if k not in used and _is_scalar(v)})
        out.append(
            {
                "id": str(row["id"]) if row.get("id") is not None else f"math-{i:06d}",
                "task": "math",
                "prompt": str(row[pkey]),
                "answer": answer,
                "meta": meta,
            }
        )
    if not out:
        raise DataError(f"{path}: no problems found; expected one per line.")
    return out


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


@TASKS.register("math")
class MathTask:
    """Math problems from a file, scored on the last ``\\boxed{}`` with math-verify."""

    name = "math"
    styles: tuple[str, ...] = ()

    def generate(self, n: int, seed: int, split: str = "train", **knobs: Any) -> list[dict]:
        """There is no math generator: load problems with `load_math_problems`."""
        raise ConfigError(
            "task 'math' has no generator; pass a problem file (JSONL/parquet with 'problem' "
            "and 'answer'), read with load_math_problems(path)."
        )

    def render(self, problem: dict, style: str, seed: int) -> dict:
        """No built-in traces for math; SFT data comes from a file (`load_sft_records`)."""
        raise ConfigError(
            "task 'math' has no built-in traces; train on a file read with load_sft_records(path)."
        )

    def score(self, problem: dict, completion: str) -> dict:
        """`score_math` of the completion against ``problem["answer"]``."""
        return score_math(completion, problem["answer"])
