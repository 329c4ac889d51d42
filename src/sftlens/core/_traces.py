"""Read completions from the tools researchers already use into the Trace contract.

Formats (``--format``; ``auto`` looks at the first record):

- ``trace``: sftlens Trace JSONL (``completion`` and ``checkpoint``), passed through.
- ``messages``: OpenAI chat ``messages`` lists; the completion is the last assistant turn, the
  prompt the user turn before it.
- ``chat``: chat-completion responses (``choices[].message.content``, with
  ``reasoning_content`` where the server returns it); one trace per choice.
- ``batch``: OpenAI Batch output files, as ``vllm run-batch`` writes them (``custom_id``,
  ``response.body`` holding a chat completion; several choices per request).
- ``vllm``: vLLM ``RequestOutput`` records saved as JSON (``prompt``, ``outputs[].text``,
  ``outputs[].token_ids``, ``outputs[].finish_reason``).
- ``lm-eval``: lm-evaluation-harness ``samples_<task>_<date>.jsonl`` (``doc_id``, ``doc``,
  ``arguments``, ``resps``, ``filtered_resps``, ``filter``, ``metrics`` and one key per
  metric); the per-sample metrics are the score.
- ``table``: any JSONL, JSON list, CSV or parquet with a text column.

Reasoning is kept in the completion and marked: a ``<think>...</think>`` block (written by the
model, or rebuilt from ``reasoning_content``) gives the record a ``reasoning`` span (``start``,
``end`` char offsets into ``completion``). A Trace field the source lacks is null (never
guessed) and listed in `ImportedTraces.missing`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftlens.core._errors import ConfigError, DataError
from sftlens.core._io import check_input, check_types
from sftlens.core._rows import get_path, parse_path, read_rows

__all__ = [
    "TRACE_FORMATS",
    "TRACE_FIELDS",
    "ImportedTraces",
    "detect_trace_format",
    "read_traces",
]

TRACE_FORMATS = ("auto", "trace", "messages", "chat", "batch", "vllm", "lm-eval", "table")
# The Trace contract's fields, in the order `sftlens import` writes them.
TRACE_FIELDS = (
    "id", "problem_id", "task", "model", "checkpoint", "sample_idx", "prompt", "completion",
    "finish_reason", "n_tokens", "sampling", "score",
)  # fmt: skip
# Text columns a plain table is searched for, in order, when --text-field is not given.
TEXT_COLUMNS = ("completion", "response", "output", "generation", "text", "answer_text")
ID_COLUMNS = ("id", "sample_id", "uid")
THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


# --------------------------------------------------------------------------- detection


_NONE = type(None)
# The Trace contract's field types, checked on every record of a sftlens traces file (a wrong
# type is one line naming file, line and key, not a crash deep inside a table).
TRACE_FIELD_TYPES = {
    "id": (str, int),
    "problem_id": (str, int, _NONE),
    "task": (str, _NONE),
    "model": (str, _NONE),
    "checkpoint": (dict, _NONE),
    "checkpoint.path": (str, _NONE),
    "checkpoint.step": (int, _NONE),
    "checkpoint.epoch": (float, _NONE),
    "checkpoint.tokens_seen": (int, _NONE),
    "sample_idx": (int, _NONE),
    "prompt": (str, _NONE),
    "completion": (str, _NONE),
    "finish_reason": (str, _NONE),
    "n_tokens": (int, _NONE),
    "sampling": (dict, _NONE),
    "score": (dict, _NONE),
}


# Keys a sftlens traces file must carry (the record is read as that format only when it has
# `completion` and a `checkpoint` object; its path may be absent, the step then keys it).
TRACE_REQUIRED = ("id",)


def detect_trace_format(record: dict) -> str:
    """The format a record is in (one of `TRACE_FORMATS` but ``auto``)."""
    if "custom_id" in record and "response" in record:
        return "batch"
    if isinstance(record.get("choices"), list):
        return "chat"
    if isinstance(record.get("messages"), list):
        return "messages"
    if isinstance(record.get("outputs"), list):
        return "vllm"
    if "doc_id" in record and ("resps" in record or "filtered_resps" in record):
        return "lm-eval"
    if "completion" in record and isinstance(record.get("checkpoint"), dict):
        return "trace"
    return "table"


# --------------------------------------------------------------------------- one completion


def _mark_reasoning(text: str) -> dict | None:
    m = THINK_RE.search(text)
    return None if m is None else {"start": m.start(), "end": m.end()}


def _with_reasoning(content: str | None, reasoning: str | None) -> str:
    """The completion with the server-separated reasoning put back as a ``<think>`` block."""
    content = content or ""
    if not reasoning:
        return content
    return f"<think>\n{reasoning}\n</think>\n\n{content}"


def _text(value: Any, where: str, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        parts = [p.get("text", "") for p in value if isinstance(p, dict)]
        if len(parts) == len(value):
            return "".join(parts)
    if not isinstance(value, str):
        raise DataError(
            f"{where}: {what} is {type(value).__name__}, not a string; pass --text-field "
            "naming the text (e.g. 'messages[-1].content')."
        )
    return value


@dataclass
class _Completion:
    """What a format extracts from one source record, before the common fields are filled in."""

    completion: str
    prompt: Any = None
    problem_id: Any = None
    finish_reason: str | None = None
    n_tokens: int | None = None
    score: dict | None = None
    sampling: dict | None = None
    task: str | None = None
    model: str | None = None


def _messages(rec: dict, where: str) -> list[_Completion]:
    msgs = rec["messages"]
    last = max((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "assistant"),
               default=None)  # fmt: skip
    if last is None:
        raise DataError(f"{where}: 'messages' has no assistant turn; nothing to import.")
    turn = msgs[last]
    text = _with_reasoning(_text(turn.get("content"), where, f"messages[{last}].content"),
                           turn.get("reasoning_content"))  # fmt: skip
    user = [m for m in msgs[:last] if isinstance(m, dict) and m.get("role") == "user"]
    prompt = _text(user[-1].get("content"), where, "the user turn's content") if user else None
    return [_Completion(text, prompt=prompt)]


def _chat(body: dict, where: str) -> list[_Completion]:
    out = []
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise DataError(f"{where}: 'choices' is missing or empty; is this a chat completion?")
    usage = body.get("usage") or {}
    for j, ch in enumerate(choices):
        msg = ch.get("message") if isinstance(ch, dict) else None
        if isinstance(msg, dict):
            text = _with_reasoning(_text(msg.get("content"), where, f"choices[{j}].message.content"),
                                   msg.get("reasoning_content") or msg.get("reasoning"))  # fmt: skip
        elif isinstance(ch, dict) and "text" in ch:  # a /v1/completions response
            text = _text(ch["text"], where, f"choices[{j}].text")
        else:
            raise DataError(f"{where}: choices[{j}] has neither 'message' nor 'text'.")
        # usage counts every choice together; it is one completion's length only when n == 1.
        n_tok = usage.get("completion_tokens") if len(choices) == 1 else None
        out.append(_Completion(text, finish_reason=ch.get("finish_reason"), n_tokens=n_tok,
                               model=body.get("model"), problem_id=body.get("id")))  # fmt: skip
    return out


def _batch(rec: dict, where: str) -> list[_Completion]:
    resp = rec.get("response")
    if rec.get("error") or not isinstance(resp, dict):
        raise DataError(
            f"{where}: request {rec.get('custom_id')!r} failed ({rec.get('error')}); drop failed "
            "requests from the batch output before importing."
        )
    body = resp.get("body", resp)  # OpenAI nests the completion in body; some writers do not
    outs = _chat(body, where)
    for c in outs:
        c.problem_id = rec.get("custom_id")
    return outs


def _vllm(rec: dict, where: str) -> list[_Completion]:
    out = []
    for j, o in enumerate(rec["outputs"]):
        if not isinstance(o, dict) or "text" not in o:
            raise DataError(
                f"{where}: outputs[{j}] has no 'text'; save RequestOutput.outputs[].text."
            )
        ids = o.get("token_ids")
        out.append(_Completion(
            _text(o["text"], where, f"outputs[{j}].text"), prompt=rec.get("prompt"),
            problem_id=rec.get("request_id"), finish_reason=o.get("finish_reason"),
            n_tokens=len(ids) if isinstance(ids, list) else None,
        ))  # fmt: skip
    return out


def _lm_eval_prompt(args: Any) -> Any:
    """The prompt in lm-eval's ``arguments``: ``{"gen_args_0": {"arg_0": ...}}`` or ``[[p, {}]]``."""
    if isinstance(args, dict):
        first = args.get("gen_args_0") or next(iter(args.values()), None)
        return first.get("arg_0") if isinstance(first, dict) else None
    if isinstance(args, list) and args and isinstance(args[0], list) and args[0]:
        return args[0][0]
    return None


def _lm_eval(rec: dict, where: str) -> list[_Completion]:
    resps = rec.get("resps")
    if not isinstance(resps, list) or not resps:
        raise DataError(f"{where}: 'resps' is missing or empty; run lm_eval with --log_samples.")
    texts = resps[0] if isinstance(resps[0], list) else resps
    metrics = rec.get("metrics") or []
    score: dict[str, Any] = {k: rec[k] for k in metrics if k in rec}
    # The first 0/1 metric (exact_match, acc, pass@1, ...) says whether the sample is right.
    flags = [v for v in score.values() if isinstance(v, (bool, int, float)) and v in (0, 1)]
    if flags:
        score["correct"] = bool(flags[0])
    filtered = rec.get("filtered_resps")
    if isinstance(filtered, list) and filtered and isinstance(filtered[0], str):
        score["parsed_answer"] = filtered[0]
    if "target" in rec:
        score["target"] = rec["target"]
    gen = rec.get("arguments")
    kwargs = None
    if isinstance(gen, dict) and isinstance(gen.get("gen_args_0"), dict):
        kwargs = gen["gen_args_0"].get("arg_1")
    return [
        _Completion(_text(t, where, f"resps[0][{j}]"), prompt=_lm_eval_prompt(gen),
                    problem_id=rec.get("doc_id"), score=dict(score),
                    sampling=kwargs if isinstance(kwargs, dict) else None)
        for j, t in enumerate(texts)
    ]  # fmt: skip


_READERS: dict[str, Callable[[dict, str], list[_Completion]]] = {
    "messages": _messages,
    "chat": _chat,
    "batch": _batch,
    "vllm": _vllm,
    "lm-eval": _lm_eval,
}


def _table_score(rec: dict) -> dict | None:
    score = rec.get("score")
    if isinstance(score, dict):
        return dict(score)
    for key in ("correct", "is_correct"):
        if key in rec and rec[key] not in (None, ""):
            return {"correct": _truthy(rec[key])}
    if isinstance(score, (bool, int, float)) and score in (0, 1):
        return {"correct": bool(score)}
    return None


def _truthy(v: Any) -> bool | None:
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("1", "true", "yes", "y", "t", "1.0"):
            return True
        if s in ("0", "false", "no", "n", "f", "0.0"):
            return False
        return None
    return bool(v)


# --------------------------------------------------------------------------- the reader


@dataclass
class ImportedTraces:
    """Records in the Trace contract, with what was detected and what the source lacked."""

    records: list[dict]
    format: str
    source: str
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def manifest(self) -> dict:
        """What `sftlens import` writes beside its output."""
        return {"source": self.source, "format": self.format, "n_traces": len(self.records),
                "missing_fields": self.missing, "notes": self.notes}  # fmt: skip


def _int_or_none(v: Any, where: str, what: str) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {what} {v!r} is not an integer step.") from None


def _from_name(pattern: str | None, path: Path, what: str) -> str | None:
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"--{what}-from '{pattern}' is not a valid regex ({e}).") from None
    m = rx.search(str(path))
    if m is None:
        raise DataError(f"{path}: --{what}-from '{pattern}' does not match the file's path.")
    return m.group(1) if rx.groups else m.group(0)


def read_traces(
    path: str | os.PathLike,
    fmt: str = "auto",
    *,
    text_field: str | None = None,
    id_field: str | None = None,
    model: str | None = None,
    step: int | None = None,
    step_from: str | None = None,
    model_from: str | None = None,
    task: str | None = None,
) -> ImportedTraces:
    """Read a file of completions in any supported format into Trace-contract records.

    Args:
        path: JSONL, JSON, CSV or parquet file.
        fmt: one of `TRACE_FORMATS`; ``auto`` detects it from the first record.
        text_field: a field path to the completion text (``messages[-1].content``,
            ``response.body.choices[0].message.content``); overrides the format's own.
        id_field: a field path to the record id (default: the format's own id, else the
            0-based record index).
        model: the model name for every record (wins over fields and `model_from`).
        step: the checkpoint step for every record (wins over fields and `step_from`).
        step_from: a regex over the file's path whose first group is the step
            (``'step(\\d+)'``), used where the records carry none.
        model_from: the same for the model name.
        task: the task name for every record (default: the record's ``task``; lm-eval files
            take it from ``samples_<task>_<date>.jsonl``).

    Returns:
        The records (one per completion; a request with several choices gives several, ids
        ``<id>#<k>``) and the Trace fields that are null in every record.

    Raises:
        DataError: a missing or malformed file; a record without the text (naming file, line
            and field); duplicate ids.
        ConfigError: an unknown format or a malformed field path or pattern.
    """
    p = check_input(path, "traces file")
    if fmt not in TRACE_FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(TRACE_FORMATS)}.")
    for fp in (text_field, id_field):
        if fp:
            parse_path(fp)
    name_step = _int_or_none(_from_name(step_from, p, "step"), str(p), "--step-from match")
    name_model = _from_name(model_from, p, "model")
    file_task = task
    notes: list[str] = []
    m = re.match(r"samples_(.+)_\d{4}-\d{2}-\d{2}T[\d\-:.]+\.jsonl$", p.name)
    records: list[dict] = []
    detected = fmt
    lm_filter = None
    seen: dict = {}
    for k, (where, rec) in enumerate(read_rows(p)):
        if detected == "auto":
            detected = detect_trace_format(rec)
        if text_field is None and detected not in _READERS:
            # A table's text column is chosen once, from its first record.
            text_field = next((c for c in TEXT_COLUMNS if c in rec), None)
            if text_field is None:
                raise DataError(
                    f"{where}: no text column (looked for {', '.join(TEXT_COLUMNS)}; has "
                    f"{', '.join(sorted(rec)) or 'none'}); pass --text-field naming it."
                )
        if detected == "lm-eval":
            # lm-eval writes one line per (doc, filter); keep the first filter, or each
            # completion would count twice.
            lm_filter = rec.get("filter") if lm_filter is None else lm_filter
            if rec.get("filter") != lm_filter:
                continue
            if file_task is None and m is not None:
                file_task = m.group(1)
        if detected == "trace":
            # A sftlens traces file is the Trace contract: its id is required, and every
            # field has its type.
            for key in TRACE_REQUIRED:
                if key not in rec:
                    has = ", ".join(sorted(rec)) or "none"
                    raise DataError(f"{where}: missing key {key!r} (has: {has}).")
            check_types(rec, TRACE_FIELD_TYPES, where)
        completions = _extract(rec, where, detected, text_field)
        for j, c in enumerate(completions):
            tr = _to_trace(rec, c, where, k, detected, id_field, (j, len(completions)))
            tr["task"] = file_task or tr["task"]
            ck = tr["checkpoint"]
            ck["step"] = step if step is not None else (
                ck["step"] if ck["step"] is not None else name_step)  # fmt: skip
            tr["model"] = model or tr["model"] or name_model
            if tr["id"] in seen:
                raise DataError(
                    f"{where}: duplicate id {tr['id']!r} (first at {seen[tr['id']]}); pass "
                    "--id-field naming a unique field, or drop repeated records."
                )
            seen[tr["id"]] = where
            records.append(tr)
    if lm_filter is not None:
        notes.append(f"lm-eval filter {lm_filter!r} kept (one line per document)")
    missing = [f for f in TRACE_FIELDS if all(_is_null(f, tr) for tr in records)]
    if detected == "auto":
        detected = "table"
    return ImportedTraces(records, detected, str(p), missing, notes)


def _is_null(name: str, tr: dict) -> bool:
    v = tr.get(name)
    if name == "checkpoint":
        return all(x is None for x in (v or {}).values())
    return v is None or v == {}


def _extract(rec: dict, where: str, fmt: str, text_field: str | None) -> list[_Completion]:
    if fmt in _READERS:
        if text_field is None:
            need = {"messages": "messages", "vllm": "outputs", "chat": "choices"}.get(fmt)
            if need and not isinstance(rec.get(need), list):
                raise DataError(f"{where}: no {need!r} list; is this a {fmt} file? (--format)")
            return _READERS[fmt](rec, where)
        try:  # the format still gives prompt, ids and score where it can
            c = _READERS[fmt](rec, where)[0]
        except (DataError, KeyError, IndexError, TypeError, AttributeError):
            c = _Completion("")
        c.completion = _field_text(rec, text_field, where)
        return [c]
    assert text_field is not None  # chosen by read_traces from the first record
    return [_Completion(_field_text(rec, text_field, where), prompt=rec.get("prompt"),
                        score=_table_score(rec), finish_reason=rec.get("finish_reason"),
                        n_tokens=rec.get("n_tokens"), sampling=rec.get("sampling"))]  # fmt: skip


def _field_text(rec: dict, text_field: str, where: str) -> str:
    try:
        value = get_path(rec, text_field)
    except KeyError as e:
        raise DataError(
            f"{where}: missing key {e.args[0]!r} of --text-field {text_field!r} (has: "
            f"{', '.join(sorted(rec)) or 'none'})."
        ) from None
    return _text(value, where, f"field {text_field!r}")


def _to_trace(
    rec: dict,
    c: _Completion,
    where: str,
    k: int,
    fmt: str,
    id_field: str | None,
    sample: tuple[int, int],
) -> dict:
    """One Trace record; the `sample` (index, count) of a multi-completion record suffixes its id."""
    own_id = None
    if id_field:
        own_id = get_path(rec, id_field, None)
        if own_id is None:
            raise DataError(f"{where}: missing --id-field {id_field!r}.")
    elif fmt in ("trace", "table", "messages"):
        own_id = next((rec[c] for c in ID_COLUMNS if rec.get(c) not in (None, "")), None)
    base = own_id if own_id is not None else (c.problem_id if c.problem_id is not None else k)
    sample_idx, n_samples = sample
    ck_in = rec.get("checkpoint") if isinstance(rec.get("checkpoint"), dict) else {}
    ck = {
        "path": ck_in.get("path"),
        "step": _int_or_none(
            ck_in["step"] if ck_in.get("step") is not None else rec.get("step"), where, "step"
        ),
        "epoch": ck_in.get("epoch"),
        "tokens_seen": ck_in.get("tokens_seen"),
    }
    if fmt == "trace":
        out = {key: rec.get(key) for key in TRACE_FIELDS} | {
            k2: v for k2, v in rec.items() if k2 not in TRACE_FIELDS
        }
        out["completion"] = c.completion
        out["checkpoint"] = {**ck_in, **ck}
        out["score"] = out.get("score") or {}
        out["reasoning"] = rec.get("reasoning", _mark_reasoning(c.completion))
        return out
    return {
        "id": base if n_samples == 1 else f"{base}#{sample_idx}",
        "problem_id": rec.get("problem_id", c.problem_id if c.problem_id is not None else base),
        "task": rec.get("task") if isinstance(rec.get("task"), str) else c.task,
        "model": rec.get("model") if isinstance(rec.get("model"), str) else c.model,
        "checkpoint": ck,
        "sample_idx": sample_idx,
        "prompt": c.prompt,
        "completion": c.completion,
        "finish_reason": c.finish_reason,
        "n_tokens": _int_or_none(c.n_tokens, where, "n_tokens"),
        "sampling": c.sampling,
        "score": c.score or {},
        "reasoning": _mark_reasoning(c.completion),
    }
