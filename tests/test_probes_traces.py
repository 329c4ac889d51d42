"""Probes on a user's own traces: positions from tagged sentences, char offsets and the last
prompt token, cached from a tiny real model, fitted with the usual controls."""

from __future__ import annotations

import json

import pytest

from sftlens.core import read_jsonl, read_parquet, read_traces

N_TRACES = 16


@pytest.fixture(scope="module")
def own_traces(tmp_path_factory):
    """Countdown CoT traces saved the way a user saves chats: OpenAI `messages`, one per line."""
    from sftlens.tasks import get_task

    task = get_task("countdown")
    path = tmp_path_factory.mktemp("own") / "chats.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for p in task.generate(N_TRACES, seed=3):
            r = task.render(p, "cot", seed=3)
            msgs = [{"role": "user", "content": r["prompt"]},
                    {"role": "assistant", "content": r["response"]}]  # fmt: skip
            f.write(json.dumps({"id": r["id"], "messages": msgs}) + "\n")
    return path


def test_sentence_positions_sit_before_and_at_each_sentence(tiny_tokenizer, own_traces):
    from sftlens.probes._datasets import encode_with_offsets
    from sftlens.probes._trace_items import sentence_items, sentence_spans
    from sftlens.trace_tagger import Tagger

    traces = read_traces(own_traces).records[:3]
    tagger = Tagger()
    tags = {tr["id"]: tagger.tag(tr["completion"]) for tr in traces}
    items = list(sentence_items(tiny_tokenizer, traces, tags, ["backtracking"]))
    assert len(items) == 3
    for tr, item in zip(traces, items, strict=True):
        _, offsets, resp_char = encode_with_offsets(tiny_tokenizer, tr["prompt"], tr["completion"])
        sents = sentence_spans(tr["completion"])
        for pos, row in zip(item.positions, item.rows, strict=True):
            start = resp_char + sents[row["sentence_idx"]][0]
            if row["position_kind"] == "pre_sentence":
                assert offsets[pos][1] <= start  # nothing of the sentence is in the input yet
            else:
                assert offsets[pos][0] <= start < offsets[pos][1]
        spans = [s for s in tags[tr["id"]]["spans"] if s["label"] == "backtracking"]
        labelled = {r["sentence_idx"] for r in item.rows if r["tag_backtracking"]}
        want = {
            k
            for k, (a, b) in enumerate(sents)
            if any(s["start"] < b and s["end"] > a for s in spans)
        }
        assert labelled == want and want


def test_backtracking_probe_on_own_traces_with_controls(tiny_model_dir, own_traces, tmp_path,
                                                        run_cli):  # fmt: skip
    tags, cache, fit = tmp_path / "tags.jsonl", tmp_path / "cache", tmp_path / "fit.parquet"
    assert run_cli("tag", own_traces, "--out", tags)[0] == 0
    rc, out, err = run_cli("probe", "cache", tiny_model_dir, "--traces", own_traces, "--tags", tags,
                           "-o", cache)  # fmt: skip
    assert rc == 0, err
    assert f"from {N_TRACES} traces" in out
    rc, out, err = run_cli("probe", "fit", cache, "--label", "tag_backtracking", "--where",
                           "position_kind == 'pre_sentence'", "--n-splits", "4", "-o", fit)  # fmt: skip
    assert rc == 0, err
    df = read_parquet(fit)
    assert {"logreg", "diffmean", "shuffled", "surface"} <= set(df["probe"])
    auroc = df[df["metric"] == "auroc"]
    assert set(auroc["n_groups"]) == {N_TRACES} and auroc["value"].between(0, 1).all()
    # The positives are the sentences the tagger labels backtracking, one row each.
    from sftlens.probes._trace_items import sentence_spans

    texts = {t["id"]: t["completion"] for t in read_traces(own_traces).records}
    n_bt = 0
    for tg in read_jsonl(tags):
        tr_text = texts[tg["id"]]
        spans = [s for s in tg["spans"] if s["label"] == "backtracking"]
        n_bt += sum(any(s["start"] < b and s["end"] > a for s in spans)
                    for a, b in sentence_spans(tr_text))  # fmt: skip
    assert set(auroc["n_pos"]) == {n_bt} and n_bt > N_TRACES
    assert "selectivity_auroc" in set(df["metric"])


def test_offsets_and_last_prompt_on_generated_traces(tiny_model_dir, tmp_path, run_cli):
    out = tmp_path / "gen"
    rc, _, err = run_cli("generate", "-m", tiny_model_dir, "-e", "countdown", "--eval-n", "4",
                         "--max-new-tokens", "12", "-o", out)  # fmt: skip
    assert rc == 0, err
    traces = list(read_jsonl(out / "traces.jsonl"))
    marked = tmp_path / "marked.jsonl"
    with open(marked, "w", encoding="utf-8") as f:
        for t in traces:
            half = max(1, len(t["completion"]) // 2)
            t["offsets"] = [{"start": 0, "first": True}, {"start": half, "first": False}]
            f.write(json.dumps(t) + "\n")
    rc, out_text, err = run_cli("probe", "cache", tiny_model_dir, "--traces", marked,
                                "--positions", "offsets", "-o", tmp_path / "c1")  # fmt: skip
    assert rc == 0, err
    assert f"cached {4 * len(traces)} rows from {len(traces)} traces" in out_text
    rc, out_text, err = run_cli("probe", "cache", tiny_model_dir, "--traces", out / "traces.jsonl",
                                "--positions", "last-prompt", "--label-field", "score.correct",
                                "-o", tmp_path / "c2")  # fmt: skip
    assert rc == 0, err
    assert f"cached {len(traces)} rows" in out_text
    bad = tmp_path / "bad.jsonl"
    t = dict(traces[0], offsets=[{"start": 10_000}])
    bad.write_text(json.dumps(t) + "\n")
    rc, _, err = run_cli("probe", "cache", tiny_model_dir, "--traces", bad, "--positions",
                         "offsets", "-o", tmp_path / "c3")  # fmt: skip
    assert rc == 2 and "offsets[0].start 10000 is outside the completion" in err
    rc, _, err = run_cli(
        "probe", "cache", tiny_model_dir, "--traces", marked, "-o", tmp_path / "c4"
    )
    assert rc == 2 and "needs --tags" in err
