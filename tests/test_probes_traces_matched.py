"""The matched design on a user's own traces: "a backtracking sentence follows", beyond surface.

Countdown chain-of-thought traces rendered by the task (they backtrack from dead ends) are
tagged by the real tagger, cached at ``pre_sentence`` through two tiny real models (the same
architecture, different weights), and probed through the CLI with ``probe fit --matched``.
"""

from __future__ import annotations

import json

import pytest

from sftlens.core import read_json, read_parquet
from sftlens.probes import VERDICTS

N_TRACES = 120
WHERE = "position_kind == 'pre_sentence'"


def _cli(*argv) -> None:
    from sftlens.cli import main

    try:
        main([str(a) for a in argv])
    except SystemExit as e:
        assert e.code in (0, None), argv


@pytest.fixture(scope="module")
def bt_cache(tmp_path_factory, tiny_model_dir):
    """A cache of tagged Countdown traces at pre_sentence only, with the traces and tags."""
    from sftlens.tasks import get_task

    d = tmp_path_factory.mktemp("bt")
    task = get_task("countdown")
    traces = d / "cd.jsonl"
    with open(traces, "w", encoding="utf-8") as f:
        for p in task.generate(N_TRACES, seed=5):
            f.write(json.dumps(task.render(p, "cot", seed=5)) + "\n")
    _cli("tag", traces, "--text-field", "response", "--out", d / "tags.jsonl")
    _cache(tiny_model_dir, d, d / "strong")
    return d / "strong"


def _cache(model, d, out) -> None:
    _cli("probe", "cache", model, "--traces", d / "cd.jsonl", "--tags", d / "tags.jsonl",
         "--kinds", "pre_sentence", "-o", out)  # fmt: skip


def _fit(run_cli, cache, out, *extra):
    return run_cli("probe", "fit", cache, "--matched", "--label", "tag_backtracking", "--where",
                   WHERE, "--n-boot", "200", "-o", out, *extra)  # fmt: skip


def test_matched_backtracking_probe_through_the_cli(bt_cache, tmp_path, run_cli):
    out = tmp_path / "bt.parquet"
    # Compared with itself: the paired bootstrap must give a difference of exactly 0 in every
    # resample (a known answer for the pairing over problems).
    rc, text, err = _fit(run_cli, bt_cache, out, "--compare", bt_cache)
    assert rc == 0, err
    lines = text.splitlines()
    # The columns matched on are named (the trace defaults: the cache has no Countdown states).
    assert lines[0].startswith("tag_backtracking: matched on exact token_id, recent_ids; near "
                               "resp_pos, step_idx")  # fmt: skip
    for design in ("unmatched", "matched"):
        assert any(ln.startswith(f"{bt_cache} {design}: ") and "surface AUROC" in ln
                   and "best selectivity" in ln for ln in lines)  # fmt: skip
    table = read_parquet(out)
    assert set(table["design"]) == {"unmatched", "matched"}
    assert out.with_suffix(".csv").is_file()
    assert set(table["match_exact"]) == {"token_id,recent_ids"}
    assert set(table["role"]) == {"cache", "compare"}
    table = table[table["role"] == "cache"]
    m = table[table["design"] == "matched"]
    n_pairs = int(m["n_pairs"].iloc[0])
    assert n_pairs >= 10
    assert (m["n"] == 2 * n_pairs).all() and (m["n_pos"] == n_pairs).all()
    surf = m[(m["probe"] == "surface") & (m["metric"] == "auroc")]
    # Paired on everything the surface reader sees, it can hardly tell the classes apart
    # there, while on all rows the text so far gives a backtrack away.
    assert 0.3 <= float(surf["value"].iloc[0]) <= 0.7
    u = table[table["design"] == "unmatched"]
    assert float(u[(u["probe"] == "surface") & (u["metric"] == "auroc")]["value"].iloc[0]) > 0.8
    sel = m[(m["probe"] == "logreg") & (m["metric"] == "selectivity")]
    assert len(sel) == 2 and sel["value"].between(-1, 1).all()
    assert (sel["lo"] <= sel["value"]).all() and (sel["value"] <= sel["hi"]).all()
    scores = read_parquet(tmp_path / "bt_scores.parquet")
    assert set(scores["design"]) == {"unmatched", "matched"} and scores["score"].notna().any()
    same = read_json(tmp_path / "bt_compare.json")
    assert same["difference"] == same["lo"] == same["hi"] == 0.0
    assert same["shared_problems"] == N_TRACES
    assert lines[-2] == (f"strong = {bt_cache}, weak = {bt_cache} ({N_TRACES} problems in both): "
                         f"{same['text']}")  # fmt: skip


@pytest.mark.slow
def test_two_models_on_the_same_traces_as_one_paired_number(bt_cache, tiny_tokenizer, tmp_path,
                                                            run_cli):  # fmt: skip
    from conftest import fixture_seed
    from sftlens.train import build_toy_model

    other = tmp_path / "other" / "checkpoints" / "step-000000"
    build_toy_model("toy-tiny", tiny_tokenizer, seed=fixture_seed(7)).save_pretrained(other)
    tiny_tokenizer.save_pretrained(other)
    weak = tmp_path / "weak"
    _cache(other, bt_cache.parent, weak)
    rc, text, err = _fit(run_cli, bt_cache, tmp_path / "bt.parquet", "--compare", weak)
    assert rc == 0, err
    for cache in (bt_cache, weak):
        for design in ("unmatched", "matched"):
            assert any(ln.startswith(f"{cache} {design}: ") for ln in text.splitlines())
    assert set(read_parquet(tmp_path / "bt_scores.parquet")["cache"]) == {str(bt_cache), str(weak)}
    cmp = read_json(tmp_path / "bt_compare.json")
    assert cmp["verdict"] in VERDICTS and cmp["text"].startswith(VERDICTS[cmp["verdict"]])
    assert cmp["lo"] <= cmp["difference"] <= cmp["hi"] and cmp["lo"] < cmp["hi"]
    assert cmp["strong"]["selectivity"] - cmp["weak"]["selectivity"] == pytest.approx(
        cmp["difference"]
    )
    assert cmp["shared_problems"] == N_TRACES


def test_too_few_positives_or_pairs_is_one_line_and_writes_nothing(bt_cache, tmp_path, run_cli):
    strong = bt_cache
    out = tmp_path / "few.parquet"
    rc, _, err = run_cli("probe", "fit", strong, "--matched", "--label", "tag_backtracking",
                         "--where", f"{WHERE} and sentence_idx < 4", "-o", out)  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "tag_backtracking has " in err and " positive and " in err
    assert "cache more traces" in err
    # Enough positives, but a caliper so tight that almost no state finds a partner.
    rc, _, err = run_cli("probe", "fit", strong, "--matched", "--label", "tag_backtracking",
                         "--where", WHERE, "--caliper", "0.0001", "-o", out)  # fmt: skip
    assert rc == 2 and "surface-matched pairs (need 10)" in err and "--caliper" in err
    rc, _, err = run_cli("probe", "fit", strong, "--matched", "--label", "tag_backtracking",
                         "--exact", "token_id,sentence_kind", "-o", out)  # fmt: skip
    assert rc == 2 and "--exact 'sentence_kind': not a column" in err
    rc, _, err = run_cli("probe", "fit", strong, "--matched", "--label", "trace_id", "-o", out)
    assert rc == 2 and "label 'trace_id' must be 0/1 in every selected row" in err
    rc, _, err = run_cli("probe", "fit", strong, "--label", "tag_backtracking",
                         "--compare", strong, "-o", out)  # fmt: skip
    assert rc == 2 and "add --matched" in err
    assert not list(tmp_path.iterdir())


def test_match_columns_default_to_the_dead_end_columns_on_countdown_caches():
    from sftlens.probes._fit_cli import TRACE_EXACT, TRACE_NEAR, match_columns
    from sftlens.probes._matched import MATCH_EXACT, MATCH_NEAR

    dead_end = [*MATCH_EXACT, *MATCH_NEAR, "recent_ids", "dead_end"]
    assert match_columns(dead_end, None, None) == (list(MATCH_EXACT), list(MATCH_NEAR))
    trace = ["token_id", "recent_ids", "resp_pos", "step_idx", "tag_backtracking"]
    assert match_columns(trace, None, None) == (list(TRACE_EXACT), list(TRACE_NEAR))
    assert match_columns(trace, "token_id", "") == (["token_id"], [])
