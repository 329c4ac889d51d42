"""Real SFT data loading: the common JSONL / parquet layouts and the errors users hit."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sftlens.core import DataError
from sftlens.tasks import format_prompt, load_sft_records


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prompt_response_and_prompt_completion(tmp_path):
    f = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"prompt": "2+2?", "response": "4", "id": "a", "meta": {"src": "x"}},
            {"prompt": "3+3?", "completion": "6"},
        ],
    )
    recs = load_sft_records(f)
    assert [(r["prompt"], r["response"]) for r in recs] == [("2+2?", "4"), ("3+3?", "6")]
    assert recs[0]["id"] == "a" and recs[0]["meta"] == {"src": "x"}
    assert recs[1]["id"] == "d-000001" and recs[1]["meta"] == {}
    assert not any(r["prompt_formatted"] for r in recs)


def test_messages_last_assistant_turn_is_response(tmp_path):
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    f = _jsonl(tmp_path / "m.jsonl", [{"messages": msgs}, {"messages": msgs[:2]}])
    plain = load_sft_records(f)
    assert plain[0]["response"] == "4"
    # Without a tokenizer the earlier turns are joined plainly.
    assert plain[0]["prompt"] == "user: hi\nassistant: hello\nuser: 2+2?"
    # A single user turn stays plain text, so the trainer formats it like generated data.
    assert plain[1]["prompt"] == "hi" and plain[1]["response"] == "hello"
    assert not plain[1]["prompt_formatted"]


def test_messages_rendered_through_chat_template(tmp_path, tiny_tokenizer):
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    f = _jsonl(tmp_path / "m.jsonl", [{"messages": msgs}])
    (rec,) = load_sft_records(f, tokenizer=tiny_tokenizer)
    assert rec["prompt_formatted"]
    assert rec["prompt"] == "<|user|>hi\n<|assistant|>hello<|eos|>\n<|user|>2+2?\n<|assistant|>"
    # A single-turn prompt formatted by the trainer ends exactly like the multi-turn one.
    assert format_prompt(tiny_tokenizer, "2+2?") == "<|user|>2+2?\n<|assistant|>"


def test_messages_plus_response_and_conversational_prompt_completion(tmp_path):
    f = _jsonl(
        tmp_path / "m.jsonl",
        [
            {"messages": [{"role": "user", "content": "q1"}], "response": "r1"},
            {
                "prompt": [{"role": "user", "content": [{"type": "text", "text": "q2"}]}],
                "completion": [{"role": "assistant", "content": "r2"}],
            },
        ],
    )
    recs = load_sft_records(f)
    assert [(r["prompt"], r["response"]) for r in recs] == [("q1", "r1"), ("q2", "r2")]


def test_parquet_with_messages(tmp_path):
    df = pd.DataFrame(
        {
            "messages": [
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}],
            ],
            "id": ["x", "y"],
        }
    )
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False)
    recs = load_sft_records(path)
    assert [(r["id"], r["prompt"], r["response"]) for r in recs] == [
        ("x", "q", "a"),
        ("y", "q2", "a2"),
    ]


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ([{"prompt": "ok", "response": "fine"}, {"question": "q", "answer": "a"}], "d.jsonl:2"),
        ([{"messages": [{"role": "user", "content": "q"}]}], "no assistant turn"),
        ([{"prompt": "q", "response": ""}], "response is empty"),
        ([{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}], "'content'"),
    ],
)
def test_bad_records_name_file_line_and_keys(tmp_path, rows, needle):
    f = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as e:
        load_sft_records(f)
    assert needle in str(e.value)


def test_missing_keys_error_lists_expected_formats(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"prompt": "a", "response": "b"}\n\n{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_sft_records(f)
    msg = str(e.value)
    assert f"{f}:3" in msg and "prompt/response" in msg and "messages" in msg


def test_unreadable_inputs(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_sft_records(tmp_path / "nope.jsonl")
    bad = tmp_path / "d.txt"
    bad.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type"):
        load_sft_records(bad)
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"prompt": "a", "response": "b"}\n{not json\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.jsonl:2"):
        load_sft_records(broken)
    empty = tmp_path / "e.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no records"):
        load_sft_records(empty)


def test_sharegpt_and_alpaca(tmp_path):
    f = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
            {"instruction": "Summarize", "input": "Some text.", "output": "Short."},
            {"instruction": "Say hi", "input": "", "output": "Hi."},
        ],
    )
    recs = load_sft_records(f)
    assert [(r["prompt"], r["response"]) for r in recs] == [
        ("q", "a"),
        ("Summarize\n\nSome text.", "Short."),
        ("Say hi", "Hi."),
    ]
    bad = _jsonl(tmp_path / "b.jsonl", [{"conversations": [{"from": "human"}]}])
    with pytest.raises(DataError, match=r"b\.jsonl:1: each 'conversations' turn"):
        load_sft_records(bad)
