"""Multiple choice from a file (GPQA, MMLU and the like): choices in the prompt, a letter back.

Two published shapes are read as they are:

- GPQA: ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``. The correct answer sits
  in a fixed column, so the choices are shuffled per problem with a seeded stream (seed and
  problem id): the order is stated in ``meta.choice_order`` and is the same on every run.
- MMLU: ``question``, ``choices`` (a list) and ``answer`` (the index, or a letter); or the
  columns ``A``..``D`` with a letter ``answer``. The file's order is kept.

The model is asked to end with ``Answer: X``; the letter is parsed from the completion
(``Answer: X``, ``answer is (X)``, ``\\boxed{X}``, or a reply that is only the letter). A
completion with no letter is ``unparsed`` (wrong), and tables report the unparsed share.
"""

from __future__ import annotations

import random
import re
from typing import Any

from sftlens.core import ConfigError, DataError
from sftlens.tasks._loaders import iter_rows
from sftlens.tasks._math import parse_fields, pick_field, row_id
from sftlens.tasks._registry import TASKS

LETTERS = "ABCDEFGHIJ"
QUESTION_KEYS = ("question", "Question", "problem", "prompt")
GPQA_CORRECT = "Correct Answer"
GPQA_INCORRECT = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
INSTRUCTION = 'Answer with the letter of the correct choice, ending with "Answer: X".'


def render_choices(question: str, choices: list[str]) -> str:
    """The prompt: the question, one ``X) choice`` line per choice, and the answer format."""
    lines = [f"{LETTERS[i]}) {c}" for i, c in enumerate(choices)]
    return f"{question.strip()}\n\n" + "\n".join(lines) + f"\n\n{INSTRUCTION}"


def _letter_index(value: Any, n: int, where: str) -> int:
    if isinstance(value, bool):
        raise DataError(f"{where}: answer {value!r} is not a choice index or letter.")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        k = int(value)
    elif isinstance(value, str) and len(value.strip()) == 1:
        k = LETTERS.find(value.strip().upper())
    else:
        k = -1
    if not 0 <= k < n:
        raise DataError(
            f"{where}: answer {value!r} is not one of the {n} choices (an index 0..{n - 1} or a "
            f"letter A..{LETTERS[n - 1]})."
        )
    return k


def _choices(row: dict, fields: dict, where: str, seed: int, pid: str) -> tuple[list, int, str]:
    """(choices in prompt order, index of the correct one, how the order was chosen)."""
    correct_key = fields.get("correct", GPQA_CORRECT if GPQA_CORRECT in row else None)
    if correct_key is not None:
        wrong_keys = fields["incorrect"].split("|") if "incorrect" in fields else [
            k for k in GPQA_INCORRECT if row.get(k) not in (None, "")]  # fmt: skip
        missing = [k for k in (correct_key, *wrong_keys) if row.get(k) in (None, "")]
        if missing or not wrong_keys:
            raise DataError(
                f"{where}: no {', '.join(repr(k) for k in missing) or 'incorrect answers'}; a "
                "GPQA row needs 'Correct Answer' and 'Incorrect Answer 1..3'."
            )
        choices = [str(row[correct_key]).strip()] + [str(row[k]).strip() for k in wrong_keys]
        # The correct answer is always first in the file: shuffle with a per-problem stream.
        order = list(range(len(choices)))
        random.Random(f"{seed}:{pid}").shuffle(order)
        return [choices[i] for i in order], order.index(0), f"shuffled (seed {seed})"
    ckey = fields.get("choices", "choices")
    if isinstance(row.get(ckey), list):
        choices = [str(c) for c in row[ckey]]
    elif all(row.get(x) not in (None, "") for x in "ABCD"):
        choices = [str(row[x]) for x in LETTERS if row.get(x) not in (None, "")]
    else:
        raise DataError(
            f"{where}: no choices (has: {', '.join(map(str, row))}); expected GPQA's 'Correct "
            "Answer'/'Incorrect Answer N', MMLU's 'choices' list, or columns A-D; or pass "
            "--field choices=KEY."
        )
    if not 2 <= len(choices) <= len(LETTERS):
        raise DataError(f"{where}: {len(choices)} choices; give 2 to {len(LETTERS)}.")
    akey = fields.get("answer", "answer" if "answer" in row else "Answer")
    if row.get(akey) in (None, ""):
        raise DataError(f"{where}: no {akey!r} (the correct choice); pass --field answer=KEY.")
    return choices, _letter_index(row[akey], len(choices), where), "as in the file"


def load_choice_problems(path: str, fields: str | dict | None = None, seed: int = 0) -> list[dict]:
    """Read a multiple-choice file (JSONL, JSON, CSV or parquet) as problems of task ``mc``.

    Returns:
        Records with ``prompt`` (question and lettered choices), ``answer`` (the letter), and
        ``meta`` holding ``choices`` and ``choice_order``.

    Raises:
        DataError: unreadable file, a row without question, choices or answer (file and line).
    """
    fields = parse_fields(fields)
    out = []
    for i, (where, row) in enumerate(iter_rows(path, csv_ok=True)):
        qkey = pick_field(row, "prompt", fields, QUESTION_KEYS)
        if qkey is None or not isinstance(row.get(qkey), str):
            raise DataError(
                f"{where}: no question (looked for {', '.join(QUESTION_KEYS)}; has: "
                f"{', '.join(map(str, row))}); pass --field prompt=KEY."
            )
        pid = row_id(row, fields, f"mc-{i:06d}")
        choices, k, order = _choices(row, fields, where, seed, pid)
        meta = {
            key: v for key, v in row.items() if key in ("subject", "Subdomain", "High-level domain")
        }
        meta.update({"choices": choices, "choice_order": order})
        out.append({"id": pid, "task": "mc", "prompt": render_choices(row[qkey], choices),
                    "answer": LETTERS[k], "meta": meta})  # fmt: skip
    if not out:
        raise DataError(f"{path}: no questions found; expected one per line.")
    return out


# "Answer" in any case, the letter in upper case only: "the answer is a number" is prose.
_ANSWER_RE = re.compile(r"(?i:answer)\s*(?:(?i:is)|:)?\s*[:\-]?\s*\(?\**\s*([A-J])\b(?![\w'])")
_BOXED_RE = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*\(?([A-J])\)?\s*\}?\s*\}")
_ALONE_RE = re.compile(r"^\W*\(?([A-J])\)?[.:)]?\s*$")


def parse_choice(completion: str, n_choices: int = 4) -> str | None:
    """The letter a completion chose (the last ``Answer: X`` / ``\\boxed{X}``), or None."""
    text = completion or ""
    valid = LETTERS[:n_choices]
    for rx in (_BOXED_RE, _ANSWER_RE):
        found = [m.group(1) for m in rx.finditer(text) if m.group(1) in valid]
        if found:
            return found[-1]
    m = _ALONE_RE.match(text.strip())
    return m.group(1) if m and m.group(1) in valid else None


def score_choice(problem: dict, completion: str) -> dict:
    """``{"correct", "parsed_answer", "reason", "unparsed"}``; reason ok | wrong | unparsed."""
    n = len((problem.get("meta") or {}).get("choices") or LETTERS[:4])
    got = parse_choice(completion, n)
    if got is None:
        return {"correct": False, "parsed_answer": None, "reason": "unparsed", "unparsed": True}
    ok = got == str(problem["answer"]).strip().upper()
    return {"correct": ok, "parsed_answer": got, "reason": "ok" if ok else "wrong",
            "unparsed": False}  # fmt: skip


@TASKS.register("mc")
class ChoiceTask:
    """Multiple-choice questions from a file (GPQA, MMLU, ...), scored on the chosen letter."""

    name = "mc"
    styles: tuple[str, ...] = ()

    def generate(self, n: int, seed: int, split: str = "train", **knobs: Any) -> list[dict]:
        """There is no generator: pass a file (``mc@gpqa.csv``)."""
        raise ConfigError(
            "task 'mc' has no generator; pass a multiple-choice file, e.g. --eval mc@gpqa.csv."
        )

    def render(self, problem: dict, style: str, seed: int) -> dict:
        """No built-in traces for multiple choice."""
        raise ConfigError("task 'mc' has no built-in traces; train on a file instead.")

    def score(self, problem: dict, completion: str) -> dict:
        """`score_choice` of the completion."""
        return score_choice(problem, completion)
