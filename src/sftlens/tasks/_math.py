"""Math answers for real models: the last ``\\boxed{}`` of a completion, checked with math-verify.

math-verify compares answers symbolically (``\\frac{1}{2}`` equals ``0.5``), so a correct answer
in another notation is not marked wrong. Problems come from the user's file (JSONL or parquet
in the published field names of MATH500, GSM8K, AIME or AMC); there is no math generator.
"""

from __future__ import annotations

import re
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


# Field names of the published sets, in the order they are looked for: MATH500 (problem,
# answer, solution, unique_id), GSM8K (question, answer ending in "#### N"), AIME
# (Problem/Answer/ID, or problem/answer/id), AMC (problem/answer/id), and the spec's own
# {id, prompt, answer}.
PROBLEM_KEYS = ("problem", "question", "Problem", "Question", "prompt")
ANSWER_KEYS = ("answer", "Answer", "solution", "Solution")
ID_KEYS = ("id", "ID", "unique_id", "problem_id", "Record ID", "idx")
FIELD_ROLES = ("prompt", "answer", "id")
GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$")


def parse_fields(text: str | dict | None) -> dict[str, str]:
    """``"prompt=Question,answer=Final"`` -> ``{"prompt": "Question", "answer": "Final"}``.

    Raises:
        ConfigError: a part without ``=`` or a role other than prompt, answer, id (and, for
            multiple choice, choices, correct, incorrect).
    """
    if not text:
        return {}
    if isinstance(text, dict):
        pairs = list(text.items())
    else:
        pairs = []
        for part in str(text).split(","):
            if "=" not in part:
                raise ConfigError(f"--field {text!r}: write ROLE=KEY pairs, e.g. prompt=Question.")
            role, key = part.split("=", 1)
            pairs.append((role.strip(), key.strip()))
    known = (*FIELD_ROLES, "choices", "correct", "incorrect")
    for role, key in pairs:
        if role not in known or not key:
            raise ConfigError(f"--field {role}={key}: the role must be one of {', '.join(known)}.")
    return dict(pairs)


def pick_field(row: dict, role: str, fields: dict[str, str], keys: tuple[str, ...]) -> str | None:
    """The key of `row` playing `role`: the user's --field, else the first known name present."""
    if role in fields:
        return fields[role]
    return next((k for k in keys if row.get(k) not in (None, "")), None)


def row_id(row: dict, fields: dict[str, str], default: str) -> str:
    """The file's own id (``--field id=KEY`` or a known id column), else `default`."""
    key = pick_field(row, "id", fields, ID_KEYS)
    return str(row[key]) if key is not None and row.get(key) not in (None, "") else default


def _reference(where: str, akey: str, value: object) -> str:
    """The reference answer: a solution's last box, GSM8K's ``#### N``, or the value itself."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # AMC files store 14 as 14.0
    text = str(value)
    boxed = last_boxed(text)
    if akey.lower() == "solution":
        if boxed is None:
            raise DataError(f"{where}: the solution has no \\boxed{{}} answer; add 'answer'.")
        return boxed
    m = GSM8K_ANSWER.search(text)
    if m is not None:
        return m.group(1).replace(",", "")
    return text.strip()


def load_math_problems(path: str, fields: str | dict | None = None) -> list[dict]:
    """Read math problems (JSONL, JSON list, CSV or parquet) as problem records of task ``math``.

    The problem comes from ``problem``/``question``/``Problem``/``prompt``, the answer from
    ``answer``/``Answer`` (a GSM8K answer's ``#### N`` is N) or ``solution`` (its last
    ``\\boxed{}``), the id from ``id``/``ID``/``unique_id``; ``--field prompt=KEY,answer=KEY,
    id=KEY`` names other columns. Other scalar columns (level, subject, ...) go into ``meta``.

    Raises:
        DataError: unreadable file or a row without the keys (names file and line).
    """
    fields = parse_fields(fields)
    out = []
    for i, (where, row) in enumerate(iter_rows(path, csv_ok=True)):
        pkey = pick_field(row, "prompt", fields, PROBLEM_KEYS)
        akey = pick_field(row, "answer", fields, ANSWER_KEYS)
        for role, key in (("prompt", pkey), ("answer", akey)):
            if key is None or row.get(key) in (None, ""):
                known = ", ".join(PROBLEM_KEYS if role == "prompt" else ANSWER_KEYS)
                looked = f"{key!r}" if role in fields else f"(looked for {known})"
                raise DataError(
                    f"{where}: no {role} field {looked}; has: "
                    f"{', '.join(map(str, row)) or 'none'}; pass --field {role}=KEY."
                )
        meta = dict(row["meta"]) if isinstance(row.get("meta"), dict) else {}
        used = {pkey, akey, "meta", *ID_KEYS, fields.get("id")}
        meta.update({k: v for k, v in row.items() if k not in used and _is_scalar(v)})
        out.append(
            {
                "id": row_id(row, fields, f"math-{i:06d}"),
                "task": "math",
                "prompt": str(row[pkey]),
                "answer": _reference(where, akey, row[akey]),
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
