"""Eval files in their published shapes, read by the loader of the task that scores them."""

from __future__ import annotations

import os
from pathlib import Path

from sftlens.core import DataError

PROMPT_KEYS = ("prompt",)


def load_problem_file(
    path: str | os.PathLike, task: str = "", fields: str | dict | None = None, seed: int = 0
) -> list[dict]:
    """The problems of an eval file (JSONL, JSON, CSV or parquet) for `task`.

    Args:
        path: the file.
        task: ``math`` (MATH500/GSM8K/AIME/AMC field names), ``mc`` (GPQA, MMLU),
            ``""`` (detected from the first row's columns: see `detect_problem_task`),
            ``harmful``/``harmless`` (AdvBench, HarmBench, JailbreakBench, StrongREJECT,
            XSTest, Alpaca), or any other task: records with a ``prompt`` (``id`` defaults to
            ``<file stem>-<line>``, ``task`` to `task`).
        fields: the file's columns by role (``prompt=KEY,answer=KEY,id=KEY``).
        seed: the multiple-choice shuffle seed.

    Raises:
        DataError: unreadable file or a row the task's format cannot read (file and line).
    """
    from sftlens.tasks._choice import load_choice_problems
    from sftlens.tasks._instructions import KINDS, load_instructions
    from sftlens.tasks._loaders import iter_rows
    from sftlens.tasks._math import load_math_problems, parse_fields, pick_field, row_id

    if not task:
        task = detect_problem_task(path)
    if task == "math":
        return load_math_problems(str(path), fields)
    if task == "mc":
        return load_choice_problems(str(path), fields, seed)
    if task in KINDS:
        return load_instructions(str(path), task, fields=fields)
    roles = parse_fields(fields)
    stem = Path(path).stem
    out = []
    for i, (where, row) in enumerate(iter_rows(path, csv_ok=True), start=1):
        key = pick_field(row, "prompt", roles, PROMPT_KEYS)
        if key is None or not isinstance(row.get(key), str):
            raise DataError(
                f"{where}: no text prompt (has: {', '.join(map(str, row)) or 'none'}); name "
                "the column with --field prompt=KEY."
            )
        rec = {**row, "id": row_id(row, roles, f"{stem}-{i}"), "prompt": row[key]}
        if task and not rec.get("task"):
            rec["task"] = task
        out.append(rec)
    return out


def detect_problem_task(path: str | os.PathLike) -> str:
    """The task a file's first row looks like: ``mc`` (GPQA's ``Correct Answer``, MMLU's
    ``choices``), ``math`` (a problem and an answer column), ``harmful`` (AdvBench ``goal``,
    HarmBench ``Behavior``, JailbreakBench ``Goal``, StrongREJECT ``forbidden_prompt``), else
    ``""`` (records with a ``prompt`` and their own ``task``)."""
    from sftlens.tasks._loaders import iter_rows
    from sftlens.tasks._math import ANSWER_KEYS, PROBLEM_KEYS

    row = next((r for _, r in iter_rows(path, csv_ok=True)), {})
    if "task" in row:
        return ""
    if "Correct Answer" in row or isinstance(row.get("choices"), list):
        return "mc"
    if any(k in row for k in ("goal", "Goal", "Behavior", "forbidden_prompt")):
        return "harmful"
    if any(k in row for k in PROBLEM_KEYS) and any(k in row for k in ANSWER_KEYS):
        return "math"
    return ""
