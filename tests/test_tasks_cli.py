"""``sftlens data``: files a user relies on, byte-identical for a seed; one-line errors."""

from __future__ import annotations

import json

import pytest


def _lines(path):
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()]


@pytest.mark.parametrize(
    ("task", "extra"),
    [
        ("countdown", ["--style", "cot"]),
        ("countdown-hard", ["--split", "eval"]),
        ("route", ["--style", "cot", "--knob", "n_nodes=5"]),
        ("route", ["--split", "eval"]),
        ("harmful", []),
        ("harmless", ["--style", "chat"]),
        ("base-corpus", ["--knob", "countdown=0.5"]),
    ],
)
def test_same_seed_same_bytes(run_cli, tmp_path, task, extra):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        rc, out_text, err = run_cli("data", task, "--n", 12, "--seed", seed, *extra, "--out", out)
        assert rc == 0, err
        assert f"wrote 12 {task}" in out_text
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    recs = _lines(a)
    assert len(recs) == 12
    if task == "base-corpus":
        assert {"id", "task", "kind", "text"} <= set(recs[0])
    else:
        assert {"id", "task", "prompt", "answer", "meta"} <= set(recs[0])
        assert all(r["task"] == task for r in recs)
    if "--style" in extra:
        assert all({"response", "events", "style"} <= set(r) for r in recs)
    if "--split" in extra:
        assert all(r["meta"]["split"] == "eval" for r in recs)


def test_route_knob_reaches_the_generator(run_cli, tmp_path):
    out = tmp_path / "r.jsonl"
    rc, _, err = run_cli("data", "route", "--n", 5, "--knob", "n_nodes=8", "--out", out)
    assert rc == 0, err
    assert all(len(r["meta"]["nodes"]) == 8 for r in _lines(out))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["data", "sudoku", "--n", "3"], "unknown data task 'sudoku'"),
        (["data", "route", "--style", "long"], "--style 'long'"),
        (["data", "route", "--n", "0"], "--n 0"),
        (["data", "route", "--n", "-5"], "--n -5"),
        (["data", "route", "--knob", "colour=red"], "unknown knob 'colour'"),
        (["data", "route", "--knob", "n_nodes"], "--knob 'n_nodes'"),
        (["data", "route", "--split", "test"], "--split 'test'"),
        (["data", "countdown", "--knob", "colour=1"], "colour"),
        (["data", "base-corpus", "--knob", "poetry=1"], "unknown corpus kind 'poetry'"),
        (["data", "base-corpus", "--style", "cot"], "--style does not apply to base-corpus"),
    ],
)
def test_bad_input_one_line_exit_2_no_file(run_cli, tmp_path, argv, needle):
    out = tmp_path / "new" / "o.jsonl"
    argv = argv if "sudoku" in argv else [*argv, "--out", str(out)]
    rc, _, err = run_cli(*argv)
    assert rc == 2
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unwritable_out(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", "utf-8")
    rc, _, err = run_cli("data", "route", "--n", 3, "--out", blocker / "sub" / "o.jsonl")
    assert rc == 2 and err.startswith("error: --out") and len(err.strip().splitlines()) == 1
    rc, _, err = run_cli("data", "route", "--n", 3, "--out", tmp_path)
    assert rc == 2 and "is a folder" in err


def test_help_lists_examples(run_cli):
    rc, out, _ = run_cli("data", "--help")
    assert rc == 0 and "Examples" in out and "base-corpus" in out and "stats" in out
    for sub in ("countdown", "countdown-hard", "route", "harmful", "harmless", "base-corpus",
                "stats"):  # fmt: skip
        rc, out, _ = run_cli("data", sub, "--help")
        assert rc == 0 and "Example" in out and f"sftlens data {sub}" in out


def test_stats(run_cli, tmp_path):
    f = tmp_path / "r.jsonl"
    run_cli("data", "route", "--n", 10, "--style", "cot", "--out", f)
    rc, out, err = run_cli("data", "stats", f)
    assert rc == 0, err
    row = next(line for line in out.splitlines() if line.startswith("route"))
    fields = row.split()
    assert fields[:3] == ["route", "cot", "10"] and float(fields[3]) > 20
    assert "step" in row and "verify" in row
    rc, _, err = run_cli("data", "stats", tmp_path / "missing.jsonl")
    assert rc == 2 and "file not found" in err
