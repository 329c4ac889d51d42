"""Inputs of the hostile corpus: valid records, and hostile JSONL, YAML and model folders.

Everything is generated (nothing is checked in); `hostile_cases` combines these with the verbs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

# --------------------------------------------------------------------------- valid inputs


def trace(i: int, **over) -> dict:
    rec = {
        "id": f"m/step-{i % 2}/countdown/p{i}/0",
        "problem_id": f"p{i}",
        "task": "countdown",
        "eval_set": "countdown",
        "model": "m",
        "checkpoint": {"path": f"ck{i % 2}", "step": i % 2, "epoch": 0.0, "tokens_seen": 0},
        "sample_idx": 0,
        "prompt": "Using the numbers [3, 5, 7], make 22.",
        "answer": 22,
        "meta": {"numbers": [3, 5, 7], "target": 22},
        "completion": "Try 7*3 = 21. Wait, that is not 22. <answer>(7-3)*5+2</answer>",
        "finish_reason": "stop",
        "n_tokens": 12,
        "sampling": {"temperature": 0.0, "seed": 0, "n": 1},
        "score": {"correct": i % 2 == 0, "refused": False},
    }
    rec.update(over)
    return rec


def tags_record(i: int) -> dict:
    return {
        "id": trace(i)["id"],
        "ruleset": "x",
        "spans": [{"start": 14, "end": 18, "label": "backtracking", "rule": "r", "text": "Wait"}],
        "counts": {"backtracking": 1},
        "verbosity": {"tokens": 12.0},
    }


def jsonl(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


TRACES = [trace(i) for i in range(6)]
TAGS = [tags_record(i) for i in range(6)]


# --------------------------------------------------------------------------- hostile JSONL

# name -> (cause, bytes of the file given a list of valid records, what the error must name)
JSONL_HOSTILE: dict[str, tuple[str, Callable[[list], bytes], str]] = {
    "malformed_last_line": ("malformed", lambda rs: jsonl(rs)[:-8], ":6:"),
    "malformed_middle": ("malformed", lambda rs: jsonl(rs[:2]) + b"{nope\n" + jsonl(rs[2:]), ":3:"),
    "not_an_object": ("malformed", lambda rs: jsonl(rs[:1]) + b"[1, 2]\n", ":2:"),
    "non_utf8": ("malformed", lambda rs: jsonl(rs[:1]) + b'{"id": "\xff\xfe"}\n', ":2:"),
    "deep_nesting": ("bounded", lambda rs: jsonl(rs[:1]) + b"[" * 100_000 + b"\n", ":2:"),
    "deep_value": (
        "bounded",
        lambda rs: jsonl(rs[:1]) + b'{"id": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
        ":2:",
    ),
    "huge_int": ("bounded", lambda rs: jsonl(rs[:1]) + b'{"id": ' + b"9" * 5000 + b"}\n", ":2:"),
    # A 20 MB line whose string never closes.
    "huge_line": (
        "malformed",
        lambda rs: jsonl(rs[:1]) + b'{"id": "' + b"a" * 20_000_000 + b"\n",
        ":2:",
    ),
    "missing_nested_key": (
        "types",
        lambda rs: jsonl(rs[:1]) + jsonl([{**rs[1], "checkpoint": {"step": 1}}]),
        "'checkpoint.path'",
    ),
    "missing_key": (
        "types",
        lambda rs: jsonl(rs[:1]) + jsonl([{k: v for k, v in rs[1].items() if k != "id"}]),
        "'id'",
    ),
}
# Records with a field of the wrong type (for the files whose fields a verb reads).
TRACE_WRONG_TYPES = {
    "checkpoint_str": ("checkpoint", "ck0"),
    "score_list": ("score", [1, 2]),
    "sample_idx_str": ("sample_idx", "zero"),
    "n_tokens_obj": ("n_tokens", {"a": 1}),
    "model_list": ("model", ["m"]),
}
TAG_WRONG_TYPES = {
    "counts_list": ("counts", [1]),
    "spans_str": ("spans", "none"),
    "verbosity_num": ("verbosity", 3),
}


# --------------------------------------------------------------------------- hostile YAML


def yaml_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in range(1, 9):
        prev, cur = chr(ord("a") + k - 1), chr(ord("a") + k)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


YAML_HOSTILE = {
    "alias_bomb": ("bounded", lambda key: f"{key}: &x0 [1]\n" + yaml_bomb(), "aliases"),
    "python_tag": (
        "malformed",
        lambda key: f"{key}: !!python/object/apply:os.system ['id']\n",
        ":1",
    ),
    "not_yaml": ("malformed", lambda key: f"{key}: [unclosed\n", ":"),
}


# --------------------------------------------------------------------------- hostile weights


def safetensors_bytes(names: tuple[str, ...] = ("w",)) -> bytes:
    header = {n: {"dtype": "F32", "shape": [4], "data_offsets": [16 * i, 16 * i + 16]}
              for i, n in enumerate(names)}  # fmt: skip
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * (16 * len(names))


HOOK = "blocks.0.hook_resid_post"
DIRECTIONS = (HOOK, f"{HOOK}.norm")


def model_dir(root: Path, weights: str) -> Path:
    """A model folder with config.json and broken weights (`weights` names how)."""
    d = root / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (d / "tokenizer.json").write_text("{}")
    good = safetensors_bytes()
    if weights == "truncated":
        (d / "model.safetensors").write_bytes(good[:-6])
    elif weights == "corrupt":
        (d / "model.safetensors").write_bytes(b"\x07" * 64)
    elif weights == "pickle_only":
        (d / "pytorch_model.bin").write_bytes(b"\x80\x04\x95" + b"\0" * 32)
    elif weights == "no_config":
        (d / "config.json").unlink()
        (d / "model.safetensors").write_bytes(good)
    return d


WEIGHTS_HOSTILE = {
    "truncated": ("weights", "model.safetensors"),
    "corrupt": ("weights", "model.safetensors"),
    "pickle_only": ("weights", "pickle"),
    "no_config": ("weights", "config.json"),
}
