"""`--shard K/N` and `sftlens merge`: shards joined are the files a single run writes."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture
def series(tiny_model_dir, tmp_path):
    """A run of three checkpoints (copies of the tiny model, steps 0, 10, 20)."""
    import json

    run = tmp_path / "run"
    for s in (0, 10, 20):
        d = run / "checkpoints" / f"step-{s:06d}"
        shutil.copytree(tiny_model_dir, d)
        st = json.loads((d / "trainer_state.json").read_text())
        (d / "trainer_state.json").write_text(json.dumps({**st, "step": s}))
    return run


def _gen(run_cli, model, out, *extra):
    rc, _o, err = run_cli(
        "generate", "-m", model, "-e", "route", "--eval-n", "5", "--n", "2",
        "--max-new-tokens", "3", "--temperature", "0.7", "-o", out, *extra,
    )  # fmt: skip
    assert rc == 0, err


@pytest.mark.parametrize("n", [2, 4])  # 2: by checkpoint (3 of them); 4: by problem
def test_generate_shards_merge_to_the_single_run_byte_for_byte(series, tmp_path, run_cli, n):
    _gen(run_cli, series, tmp_path / "one")
    for k in range(1, n + 1):
        _gen(run_cli, series, tmp_path / "sharded", "--shard", f"{k}/{n}")
    assert not (tmp_path / "sharded" / "table.parquet").exists()
    rc, out, err = run_cli("merge", tmp_path / "sharded")
    assert rc == 0, err
    for name in ("table.parquet", "traces.jsonl", "problems.jsonl"):
        one = (tmp_path / "one" / name).read_bytes()
        assert (tmp_path / "sharded" / name).read_bytes() == one, name


def test_merge_with_a_missing_shard_is_one_line(series, tmp_path, run_cli):
    _gen(run_cli, series, tmp_path / "s", "--shard", "1/2")
    rc, _o, err = run_cli("merge", tmp_path / "s")
    assert rc == 2 and "shard 2/2 is missing" in err and err.count("\n") == 1
    rc, _o, err = run_cli(
        "generate", "-m", series, "-e", "route", "-o", tmp_path / "x", "--shard", "3/2"
    )
    assert rc == 2 and "--shard '3/2'" in err


def test_tag_shards_merge_to_the_single_run_byte_for_byte(tmp_path, run_cli):
    from sftlens.core import write_jsonl

    texts = [
        "Try 7*3 = 21. That is not 22. Let me go back and try another way.",
        "Check: 4*5 = 20, 20+2 = 22. That matches the target.",
        "Wait, maybe I should verify this first.",
        "The answer is 5.",
        "Let me break this into subgoals: first 7-3, then times 5.",
    ]
    write_jsonl(
        tmp_path / "t.jsonl", [{"id": str(i), "completion": t} for i, t in enumerate(texts)]
    )
    rc, _o, err = run_cli("tag", tmp_path / "t.jsonl", "--out", tmp_path / "one.jsonl")
    assert rc == 0, err
    for k in (1, 2, 3):
        rc, _o, err = run_cli(
            "tag", tmp_path / "t.jsonl", "--out", tmp_path / "tags.jsonl", "--shard", f"{k}/3"
        )
        assert rc == 0, err
    rc, _o, err = run_cli("merge", tmp_path / "tags.jsonl")
    assert rc == 0, err
    assert (tmp_path / "tags.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


REFUSAL = ["--set", "n_train=4", "--set", "n_val=4", "--set", "n_eval=4"]
REFUSAL += ["--set", "max_new_tokens=2", "--set", "plots=false"]


@pytest.mark.slow
def test_refusal_and_probe_shards_merge_to_the_single_run(series, tmp_path, run_cli):
    from sftlens.core import read_parquet

    rc, _o, err = run_cli("refusal", series, "--out", tmp_path / "r1", *REFUSAL)
    assert rc == 0, err
    for k in (1, 2):
        rc, _o, err = run_cli(
            "refusal", series, "--out", tmp_path / "r2", *REFUSAL, "--shard", f"{k}/2"
        )
        assert rc == 0, err
    rc, _o, err = run_cli("merge", tmp_path / "r2")
    assert rc == 0, err
    name = "refusal.parquet"
    assert (tmp_path / "r2" / name).read_bytes() == (tmp_path / "r1" / name).read_bytes()
    assert set(read_parquet(tmp_path / "r2" / name)["step"]) == {0, 10, 20}

    args = ["-m", f"s={series}", "--n-problems", "3"]
    rc, _o, err = run_cli("probe", "drift", *args, "-o", tmp_path / "d1")
    assert rc == 0, err
    for k in (1, 2, 3):
        rc, _o, err = run_cli("probe", "drift", *args, "-o", tmp_path / "d2", "--shard", f"{k}/3")
        assert rc == 0, err
    rc, _o, err = run_cli("merge", tmp_path / "d2")
    assert rc == 0, err
    name = "drift.parquet"
    assert (tmp_path / "d2" / name).read_bytes() == (tmp_path / "d1" / name).read_bytes()
