"""Completions from other tools, in the shapes those tools write, through tag, tag-table,
table and import: model, step, task, text, score and counts end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sftlens.core import read_jsonl, read_parquet, read_traces

FORMATS = Path(__file__).parent / "data" / "formats"
LM_EVAL = "samples_gsm8k_2026-01-05T10-11-12.123456.jsonl"


@pytest.fixture(scope="module")
def tagger():
    from sftlens.trace_tagger import Tagger

    return Tagger()


def _stage(tmp_path: Path, name: str, subdir: str = "") -> Path:
    dst = tmp_path / subdir / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FORMATS / name, dst)
    return dst


def _rows(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return df[df["metric"] == metric].reset_index(drop=True)


# (file, subdir it is copied to, extra options, format, model, steps, task, n traces)
CASES = {
    "messages": ("openai_messages.jsonl", "", ["--model", "qwen-sft", "--step", "100"],
                 "messages", "qwen-sft", {100}, None, 3),
    "chat": ("chat_completions.jsonl", "qwen-step300", ["--step-from", r"step(\d+)"],
             "chat", "Qwen/Qwen3-1.7B", {300}, None, 3),
    "batch": ("batch_output.jsonl", "", ["--step", "200"], "batch", "ckpt/step-000200",
              {200}, None, 4),
    "vllm": ("vllm_outputs.jsonl", "", ["--model", "base", "--step", "0"], "vllm", "base",
             {0}, None, 2),
    "lm-eval": (LM_EVAL, "Qwen__Qwen3-8B-step1200", ["--model", "qwen8b", "--step-from",
                r"step(\d+)"], "lm-eval", "qwen8b", {1200}, "gsm8k", 3),
    "csv": ("completions.csv", "", [], "table", "qwen-sft", {100, 200}, None, 4),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_tag_and_tag_table_on_every_format(tmp_path, run_cli, tagger, case):
    name, subdir, opts, fmt, model, steps, task, n = CASES[case]
    src = _stage(tmp_path, name, subdir)
    imported = read_traces(src, step_from=opts[opts.index("--step-from") + 1]
                           if "--step-from" in opts else None)  # fmt: skip
    assert imported.format == fmt and len(imported.records) == n
    tags = tmp_path / "tags.jsonl"
    rc, out, err = run_cli("tag", src, "--out", tags)
    assert rc == 0, err
    assert f"tagged {n} records" in out
    rc, _, err = run_cli("tag-table", tags, "--traces", src, "--out", tmp_path / "t.parquet",
                         "--n-boot", "20", *opts)  # fmt: skip
    assert rc == 0, err
    df = read_parquet(tmp_path / "t.parquet")
    bt = _rows(df, "count/backtracking")
    assert set(bt["model"]) == {model}
    assert set(bt["step"].astype(int)) == steps
    assert set(bt["task"].dropna()) == ({task} if task else set())
    # The pooled rows count every completion once, per checkpoint.
    pooled = bt[bt["correct"].isna()]
    assert pooled["n"].sum() == n
    # The behaviour counts are the tagger's on each completion's text, so nothing was lost.
    texts = [tr["completion"] for tr in imported.records]
    expect = sum(tagger.tag(t)["counts"]["backtracking"] for t in texts)
    assert (pooled["value"] * pooled["n"]).sum() == pytest.approx(expect)
    assert expect >= 1


def test_scores_in_the_input_split_counts_by_correctness(tmp_path, run_cli, tagger):
    """lm-eval's exact_match and a table's `correct` column become correct/incorrect rows."""
    src = _stage(tmp_path, LM_EVAL)
    tags = tmp_path / "tags.jsonl"
    assert run_cli("tag", src, "--out", tags)[0] == 0
    rc, _, err = run_cli("tag-table", tags, "--traces", src, "--out", tmp_path / "t.parquet",
                         "--model", "m", "--step", "5", "--n-boot", "0")  # fmt: skip
    assert rc == 0, err
    bt = _rows(read_parquet(tmp_path / "t.parquet"), "count/backtracking")
    by = {(None if pd.isna(c) else bool(c)): (v, k) for c, v, k in
          zip(bt["correct"], bt["value"], bt["n"], strict=True)}  # fmt: skip
    assert by[True][1] == 2 and by[False][1] == 1 and by[None][1] == 3
    wrong = [r for r in read_jsonl(src) if r["filter"] == "strict-match" and not r["exact_match"]]
    assert by[False][0] == tagger.tag(wrong[0]["resps"][0][0])["counts"]["backtracking"]


def test_tag_table_keeps_a_top_level_step(tmp_path, run_cli):
    """A plain {id, model, step, text} file keeps its checkpoints apart."""
    src = tmp_path / "plain.jsonl"
    rows = [{"id": f"r{i}", "model": "m", "step": s, "text": "Wait, that's wrong. Try 6."}
            for i, s in enumerate([10, 10, 20])]  # fmt: skip
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tags = tmp_path / "tags.jsonl"
    assert run_cli("tag", src, "--text-field", "text", "--out", tags)[0] == 0
    rc, _, err = run_cli("tag-table", tags, "--traces", src, "--out", tmp_path / "t.parquet")
    assert rc == 0, err
    bt = _rows(read_parquet(tmp_path / "t.parquet"), "count/backtracking")
    assert dict(zip(bt["step"].astype(int), bt["n"], strict=True)) == {10: 2, 20: 1}


def test_parquet_table_and_text_field_path(tmp_path, run_cli):
    df = pd.read_csv(FORMATS / "completions.csv")
    df.to_parquet(tmp_path / "c.parquet", index=False)
    got = read_traces(tmp_path / "c.parquet").records
    want = read_traces(FORMATS / "completions.csv").records
    assert [(r["id"], r["checkpoint"]["step"], r["completion"], r["score"]) for r in got] == [
        (r["id"], r["checkpoint"]["step"], r["completion"], r["score"]) for r in want
    ]
    msgs = read_traces(FORMATS / "openai_messages.jsonl", text_field="messages[-1].content")
    assert msgs.records[1]["completion"].startswith("We need 6 times 7.")
    assert msgs.records[0]["prompt"] == "What is 17 + 25?"
    dotted = read_traces(FORMATS / "openai_messages.jsonl", text_field="messages.1.content")
    assert dotted.records[1]["completion"] == msgs.records[1]["completion"]


def test_reasoning_is_kept_and_marked():
    chat = read_traces(FORMATS / "chat_completions.jsonl").records[0]
    span = chat["reasoning"]
    think = chat["completion"][span["start"] : span["end"]]
    assert think.startswith("<think>") and "Wait, that's not right." in think
    assert chat["completion"].endswith("The answer is 42.") and chat["n_tokens"] == 62
    batch = read_traces(FORMATS / "batch_output.jsonl").records
    assert [r["id"] for r in batch] == ["request-1#0", "request-1#1", "request-2#0", "request-2#1"]
    assert [r["finish_reason"] for r in batch] == ["stop", "stop", "stop", "length"]


def test_import_writes_the_trace_contract_and_lists_null_fields(tmp_path, run_cli):
    src = _stage(tmp_path, "vllm_outputs.jsonl", "run/step-40")
    out = tmp_path / "traces.jsonl"
    rc, stdout, err = run_cli("import", src, "--out", out, "--step-from", r"step-(\d+)",
                              "--model", "tiny", "--task", "math")  # fmt: skip
    assert rc == 0, err
    recs = list(read_jsonl(out))
    assert [r["checkpoint"]["step"] for r in recs] == [40, 40]
    assert recs[1]["n_tokens"] == 40 and recs[1]["finish_reason"] == "length"
    assert recs[0]["prompt"].startswith("Q: What is 17 + 25?")
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["format"] == "vllm" and manifest["missing_fields"] == ["sampling", "score"]
    # The output is itself readable by every verb, unchanged.
    again = read_traces(out)
    assert again.format == "trace" and again.records[0]["completion"] == recs[0]["completion"]
    rc, _, err = run_cli("table", out, "-o", tmp_path / "t.parquet", "--n-boot", "10")
    assert rc == 0, err
    tab = read_parquet(tmp_path / "t.parquet")
    assert _rows(tab, "nontermination_rate")["value"].tolist() == [0.5]


def test_table_on_traces_with_nothing_to_count_says_so(tmp_path, run_cli):
    rc, _, err = run_cli("table", FORMATS / "openai_messages.jsonl", "-o", tmp_path / "t.parquet")
    assert rc == 2 and "nothing to tabulate" in err and "null: task, model" in err
    assert not (tmp_path / "t.parquet").exists()


def test_table_on_lm_eval_samples_scores_accuracy(tmp_path, run_cli):
    rc, _, err = run_cli("table", FORMATS / LM_EVAL, "--model", "m", "--step", "7",
                         "-o", tmp_path / "t.parquet", "--n-boot", "10")  # fmt: skip
    assert rc == 0, err
    acc = _rows(read_parquet(tmp_path / "t.parquet"), "accuracy")
    assert acc["value"].tolist() == [pytest.approx(2 / 3)] and acc["task"].tolist() == ["gsm8k"]
    assert acc["step"].tolist() == [7]


BAD = [
    ("m.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}\n', [], ":1: 'messages' has no assistant turn"),
    ("b.jsonl", '{"custom_id": "r1", "response": null, "error": {"code": "x"}}\n', [], ":1: request 'r1' failed"),
    ("l.jsonl", '{"doc_id": 0, "filtered_resps": ["1"], "resps": []}\n', [], ":1: 'resps' is missing or empty"),
    ("t.csv", "id,question\n1,hi\n", [], ":2: no text column"),
    ("t.jsonl", '{"messages": [{"role": "assistant", "content": "x"}]}\n', ["--text-field", "messages[-3].content"], ":1: missing key -3"),
    ("t.jsonl", '{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', [], "duplicate id 1"),
    ("t.jsonl", '{"id": 1, "text": "a"}\n', ["--step-from", r"step(\d+)"], "--step-from 'step(\\d+)' does not match"),
    ("t.jsonl", '{"id": 1, "text": "a"}\n', ["--text-field", "a..b"], "field path 'a..b' is not valid"),
    ("t.jsonl", '{"id": 1, "text": "a"}\n', ["--format", "openai"], "--format 'openai': use one of"),
    ("t.jsonl", '{"id": 1, "text": "a", "step": "x"}\n', [], ":1: step 'x' is not an integer"),
    ("t.txt", "hello\n", [], "unknown file type '.txt'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "opts", "needle"), BAD)
def test_malformed_files_are_one_line_errors(tmp_path, run_cli, name, content, opts, needle):
    src = tmp_path / name
    src.write_text(content)
    out = tmp_path / "out.jsonl"
    # tag has no --step-from (tags carry no step); import and tag read files the same way.
    for verb in ["import"] if "--step-from" in opts else ["import", "tag"]:
        rc, _, err = run_cli(verb, src, "--out", out, *opts)
        assert rc == 2 and needle in err and "Traceback" not in err, (verb, err)
        assert len(err.strip().splitlines()) == 1
        assert not out.exists()
