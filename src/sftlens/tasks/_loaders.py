"""Real SFT data: JSONL, JSON or parquet files in the common prompt/response and chat formats.

Accepted record shapes (one per line or row):

- ``{"prompt": str, "response": str}``
- ``{"prompt": str, "completion": str}``
- ``{"messages": [{"role", "content"}, ...]}``: the last assistant turn is the response and
  everything before it is the prompt.
- ``{"messages": [...], "response": str}``: the messages are the prompt.
- ``{"prompt": [messages], "completion": [messages]}`` (the conversational prompt-completion
  layout).
- ``{"conversations": [{"from": "human"|"gpt"|"system", "value"}, ...]}`` (ShareGPT), read as
  ``messages``.
- ``{"instruction": str, "input": str, "output": str}`` (Alpaca): instruction and input (after a
  blank line) are the prompt, output the response.

Every record comes out as ``{"id", "task", "prompt", "response", "answer", "meta",
"prompt_formatted"}``. ``prompt_formatted`` is False when ``prompt`` is the plain user text (the
trainer wraps it with `format_prompt`) and True when the prompt was a multi-turn conversation
already rendered through the tokenizer's chat template (use it verbatim).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftlens.core import DataError, check_input, read_rows

JSONL_SUFFIXES = (".jsonl", ".ndjson")
JSON_SUFFIXES = (".json",)
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)

SFT_FORMATS = (
    "prompt/response, prompt/completion, messages (last assistant turn = response), "
    "messages + response, conversations (ShareGPT from/value) or instruction/input/output"
)


def iter_rows(path: str | os.PathLike, csv_ok: bool = False) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, row)`` for each record of a JSONL, JSON (list), parquet or CSV file.

    ``where`` names the file and line (or record, or row) for error messages; the reading is
    `sftlens.core.read_rows`'. CSV is accepted only where `csv_ok` (SFT data needs nested
    fields a CSV cannot hold).
    """
    p = check_input(path)
    suffix = p.suffix.lower()
    known = JSONL_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES + (CSV_SUFFIXES if csv_ok else ())
    if suffix not in known:
        kinds = "JSONL, JSON or parquet" + (" or CSV" if csv_ok else "")
        raise DataError(f"{p}: unsupported file type {suffix or '(none)'!r}; use {kinds}.")
    yield from read_rows(p)


def _content(where: str, msg: Any) -> tuple[str, str]:
    """(role, text) of one chat message; text parts of a content list are joined."""
    if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
        raise DataError(
            f"{where}: each message must be an object with 'role' and 'content'; got {msg!r:.80}."
        )
    content = msg["content"]
    if isinstance(content, list):
        # OpenAI-style parts: [{"type": "text", "text": ...}, ...]
        parts = [c.get("text", "") for c in content if isinstance(c, dict)]
        content = "".join(p for p in parts if isinstance(p, str))
    if not isinstance(content, str):
        raise DataError(f"{where}: message content must be text, got {type(content).__name__}.")
    return str(msg["role"]), content


def _render_prompt(where: str, messages: list, tokenizer: Any) -> tuple[str, bool]:
    """The prompt text for the turns before the response, and whether it is already formatted.

    A single user turn stays plain text (the trainer applies `format_prompt`, exactly as for
    generated data). Longer conversations go through the tokenizer's chat template when there
    is one (with the generation prompt), else are joined as ``role: content`` lines.
    """
    turns = [_content(where, m) for m in messages]
    if not turns:
        raise DataError(f"{where}: no prompt turns before the response; expected {SFT_FORMATS}.")
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1], False
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(
                [{"role": r, "content": c} for r, c in turns],
                tokenize=False,
                add_generation_prompt=True,
            )
        except Exception as e:  # jinja raises TemplateError for unsupported roles
            raise DataError(
                f"{where}: the tokenizer's chat template rejected these messages ({e})."
            ) from None
        return text, True
    return "\n".join(f"{r}: {c}" for r, c in turns), False


SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


def _normalise(where: str, rec: dict) -> dict:
    """ShareGPT ``conversations`` (from/value) and Alpaca ``instruction``/``input``/``output``
    rows, rewritten as ``messages`` and ``prompt``/``response``."""
    if "messages" not in rec and isinstance(rec.get("conversations"), list):
        msgs = []
        for m in rec["conversations"]:
            if not isinstance(m, dict) or "from" not in m or "value" not in m:
                raise DataError(
                    f"{where}: each 'conversations' turn must have 'from' and 'value'; "
                    f"got {m!r:.80}."
                )
            msgs.append(
                {"role": SHAREGPT_ROLES.get(str(m["from"]), str(m["from"])), "content": m["value"]}
            )
        return {**rec, "messages": msgs}
    if "prompt" not in rec and "instruction" in rec and "output" in rec:
        prompt = rec["instruction"]
        extra = rec.get("input")
        if isinstance(prompt, str) and isinstance(extra, str) and extra.strip():
            prompt = f"{prompt}\n\n{extra}"
        return {**rec, "prompt": prompt, "response": rec["output"]}
    return rec


def _sft_record(where: str, idx: int, stem: str, rec: dict, tokenizer: Any) -> dict:
    rec = _normalise(where, rec)
    prompt_formatted = False
    response_key = "response" if "response" in rec else "completion"
    if "messages" in rec:
        messages = rec["messages"]
        if not isinstance(messages, list):
            raise DataError(f"{where}: 'messages' must be a list of {{role, content}} objects.")
        if rec.get(response_key) is not None:
            response = rec[response_key]
            prompt_msgs = messages
        else:
            last = max(
                (
                    i
                    for i, m in enumerate(messages)
                    if isinstance(m, dict) and m.get("role") == "assistant"
                ),
                default=None,
            )
            if last is None:
                raise DataError(
                    f"{where}: 'messages' has no assistant turn and there is no 'response' key; "
                    f"expected {SFT_FORMATS}."
                )
            response = _content(where, messages[last])[1]
            prompt_msgs = messages[:last]
        prompt, prompt_formatted = _render_prompt(where, prompt_msgs, tokenizer)
    elif "prompt" in rec and response_key in rec:
        prompt, response = rec["prompt"], rec[response_key]
        if isinstance(prompt, list):
            prompt, prompt_formatted = _render_prompt(where, prompt, tokenizer)
        if isinstance(response, list):
            turns = [_content(where, m) for m in response]
            response = "".join(c for r, c in turns if r == "assistant")
    else:
        raise DataError(
            f"{where}: no SFT fields (has: {', '.join(sorted(rec)) or 'none'}); expected "
            f"{SFT_FORMATS}."
        )
    if not isinstance(prompt, str):
        raise DataError(f"{where}: 'prompt' must be text, got {type(prompt).__name__}.")
    if not isinstance(response, str) or not response.strip():
        raise DataError(f"{where}: the response is empty or not text; every example needs one.")
    meta = rec.get("meta")
    return {
        "id": str(rec["id"]) if rec.get("id") is not None else f"{stem}-{idx:06d}",
        "task": str(rec.get("task") or "sft"),
        "prompt": prompt,
        "response": response,
        "answer": rec.get("answer"),
        "meta": dict(meta) if isinstance(meta, dict) else {},
        "prompt_formatted": prompt_formatted,
    }


def load_sft_records(path: str | os.PathLike, tokenizer: Any = None) -> list[dict]:
    """Read an SFT dataset (JSONL, JSON list or parquet) into prompt/response records.

    Args:
        path: the file. Each record is ``prompt``/``response``, ``prompt``/``completion``, a
            ``messages`` chat list (the last assistant turn is the response), ``messages``
            plus ``response``, ShareGPT ``conversations`` or Alpaca ``instruction``/``output``.
        tokenizer: optional; when it has a chat template, multi-turn prompts (system prompts,
            earlier turns) are rendered through it and marked ``prompt_formatted: True``.

    Returns:
        ``[{"id", "task", "prompt", "response", "answer", "meta", "prompt_formatted"}]``;
        ``id`` and ``meta`` pass through when present (else ``<file stem>-<index>`` and {}).

    Raises:
        DataError: unreadable file or a record without the expected keys (names file:line).
    """
    stem = Path(path).stem
    out = [
        _sft_record(where, i, stem, rec, tokenizer)
        for i, (where, rec) in enumerate(iter_rows(path))
    ]
    if not out:
        raise DataError(f"{path}: no records; expected {SFT_FORMATS}, one per line.")
    return out
