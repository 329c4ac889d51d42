"""Scoring one completion: the task's verifier, the refusal judge, length and termination."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftlens.core import DataError, read_jsonl, write_jsonl
from sftlens.rollout._judge import RefusalJudge

__all__ = [
    "TRACE_KEYS",
    "TRACE_REQUIRED",
    "TRACE_TYPES",
    "problem_of_trace",
    "rescore_traces",
    "score_trace",
]

# Keys every trace carries (the Trace contract plus what rescoring needs).
_ID = (str, int)
_NONE = type(None)
# The Trace contract's field types, checked on every line read (a wrong type is one line
# naming file, line and key instead of a crash deep inside a table).
TRACE_TYPES = {
    "id": _ID,
    "problem_id": _ID,
    "task": str,
    "eval_set": (str, _NONE),
    "model": str,
    "checkpoint": dict,
    "checkpoint.path": str,
    "checkpoint.step": (int, _NONE),
    "checkpoint.epoch": (float, _NONE),
    "checkpoint.tokens_seen": (int, _NONE),
    "sample_idx": int,
    "prompt": str,
    "completion": str,
    "finish_reason": str,
    "n_tokens": int,
    "sampling": dict,
    "score": (dict, _NONE),
    "meta": (dict, _NONE),
}
TRACE_KEYS = (
    "id",
    "problem_id",
    "task",
    "model",
    "checkpoint",
    "sample_idx",
    "prompt",
    "completion",
    "finish_reason",
    "n_tokens",
    "sampling",
    "score",
)
# The checkpoint's path names its curve in every table.
TRACE_REQUIRED = (*TRACE_KEYS, "checkpoint.path")


def score_trace(
    problem: dict,
    completion: str,
    *,
    finish_reason: str = "stop",
    n_tokens: int | None = None,
    judge: RefusalJudge | None = None,
) -> dict:
    """Score one completion of `problem`.

    The task's verifier (``sftlens.tasks.get_task(problem["task"]).score``) gives ``correct``
    and ``parsed_answer`` (and any task-specific keys); the refusal judge gives ``refused`` and
    the phrase that matched. A verifier that raises on a (hostile, malformed) completion does
    not stop a sweep: the completion scores ``correct: False`` and the error is kept in
    ``score_error``.

    Args:
        problem: a Problem record (``id``, ``task``, ``prompt``, ``answer``, ``meta``).
        completion: the model's text after the prompt.
        finish_reason: ``stop`` or ``length`` (``length`` = did not terminate).
        n_tokens: generated tokens (None when unknown).
        judge: the refusal judge (default phrase list when None).

    Returns:
        ``{correct, parsed_answer, refused, refusal_phrase, refusal_judge, n_tokens,
        finish_reason, terminated, ...task keys}``.

    Raises:
        ConfigError: the problem's task is not registered.
    """
    from sftlens.tasks import get_task

    judge = judge or RefusalJudge()
    task = get_task(str(problem.get("task")))
    score: dict[str, Any] = {"correct": None, "parsed_answer": None}
    try:
        score.update(task.score(problem, completion))
    except Exception as e:  # a verifier crash on model output must not end a sweep
        score.update(correct=False, parsed_answer=None, score_error=f"{type(e).__name__}: {e}")
    verdict = judge.judge(completion)
    if "refused" in score and score["refused"] != verdict["refused"]:
        score["task_refused"] = score["refused"]
    score.update(verdict)
    score["refusal_judge"] = judge.describe()
    score["n_tokens"] = n_tokens
    score["finish_reason"] = finish_reason
    score["terminated"] = finish_reason == "stop"
    return score


def problem_of_trace(trace: dict) -> dict:
    """The Problem record a trace was sampled from (as stored in the trace)."""
    return {
        "id": trace["problem_id"],
        "task": trace["task"],
        "prompt": trace["prompt"],
        "answer": trace.get("answer"),
        "meta": trace.get("meta") or {},
    }


def rescore_traces(
    traces_path: str | os.PathLike, out_path: str | os.PathLike, judge: RefusalJudge | None = None
) -> int:
    """Re-score every trace of a traces file (e.g. with another refusal phrase list).

    Writes a new traces file atomically (it may be the same path) and returns the count.
    """
    src = Path(traces_path)
    records = list(read_jsonl(src, required=TRACE_REQUIRED, types=TRACE_TYPES))
    if not records:
        raise DataError(f"{src}: no traces to score.")
    judge = judge or RefusalJudge()
    for r in records:
        r["score"] = score_trace(
            problem_of_trace(r),
            r["completion"],
            finish_reason=r["finish_reason"],
            n_tokens=r["n_tokens"],
            judge=judge,
        )
    return write_jsonl(out_path, records)
