"""The tag, tag-table and tag-html verbs on real files, including bad input and resume."""

from __future__ import annotations

import json

import pytest

from sftlens.core import read_jsonl, read_parquet

TEXTS = [
    "Wait, that's not right. Let me go back.",
    "Let me verify: 4 * 6 = 24. Yes, correct.",
    "",
    "First, I need to find x. Hmm, maybe 3?",
    None,
]


def _write_traces(path, n=10):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            rec = {"id": f"t{i}", "model": "m", "task": "countdown",
                   "checkpoint": {"step": i % 2}, "score": {"correct": i % 2 == 0},
                   "completion": TEXTS[i % len(TEXTS)]}  # fmt: skip
            f.write(json.dumps(rec) + "\n")


def test_tag_file_table_and_html(tmp_path, run_cli):
    traces, tags = tmp_path / "traces.jsonl", tmp_path / "tags.jsonl"
    _write_traces(traces)
    rc, out, err = run_cli("tag", traces, "--text-field", "completion", "--out", tags)
    assert rc == 0, err
    recs = list(read_jsonl(tags))
    assert [r["id"] for r in recs] == [f"t{i}" for i in range(10)]
    assert recs[0]["counts"]["backtracking"] == 1 and recs[2]["spans"] == []
    rc, out, err = run_cli("tag-table", tags, "--traces", traces, "--out", tmp_path / "t.parquet",
                           "--n-boot", "50")  # fmt: skip
    assert rc == 0, err
    df = read_parquet(tmp_path / "t.parquet")
    assert {"count/backtracking", "per1k/verification", "verbosity/tokens"} <= set(df["metric"])
    rc, out, err = run_cli("tag-html", tags, "--traces", traces, "--out", tmp_path / "t.html")
    assert rc == 0, err
    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert page.count("class='trace'") == 10 and "backtracking" in page


def test_tag_one_text(run_cli):
    rc, out, _ = run_cli("tag", "--text", "Hold on, that's wrong. Let me double-check.")
    assert rc == 0
    assert "error_admission" in out and "check_intent" in out and "ruleset:" in out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            b'{"id": 1, "completion": "ok"}\n{"id": 2, "text": "x"}\n',
            ":2: missing key 'completion'",
        ),
        (b'{"id": 1, "completion": "ok"}\n{"id": 2, "completion": "\xff"}\n', ":2: not UTF-8"),
        (b'{"id": 1, "completion": "ok"}\nnot json\n', ":2: not a JSON object"),
        (b'{"id": 1, "completion": 5}\n', ":1: field 'completion' is int"),
    ],
)
def test_bad_input_names_the_line_and_writes_nothing(tmp_path, run_cli, content, needle):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(content)
    rc, _, err = run_cli("tag", src, "--out", out)
    assert rc == 2 and needle in err and "Traceback" not in err
    assert not out.exists()


def test_missing_args_and_file(tmp_path, run_cli):
    rc, _, err = run_cli("tag", tmp_path / "nope.jsonl", "--out", tmp_path / "o.jsonl")
    assert rc == 2 and "file not found" in err
    rc, _, err = run_cli("tag", tmp_path / "nope.jsonl")
    assert rc == 2 and "--out" in err


def _crash_after(traces, out, n_lines, cut=10):
    """A tag run interrupted after `n_lines` records and `cut` bytes of the next line."""
    from sftlens.trace_tagger import tag_file
    from sftlens.trace_tagger._batch import PARTIAL_SUFFIX

    tag_file(traces, out, chunk_records=3)
    full = out.read_text(encoding="utf-8").splitlines()
    out.unlink()
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    # Start a run for real so it records what it is made from, then cut it short.
    out.with_name(out.name + PARTIAL_SUFFIX + ".json").unlink(missing_ok=True)
    from sftlens.core import start_resumable
    from sftlens.trace_tagger._batch import resume_record
    from sftlens.trace_tagger._ruleset import RULESET_ID

    made_from = resume_record(traces, "auto", None, None, RULESET_ID)
    assert start_resumable(partial, made_from) is False
    partial.write_text("\n".join(full[:n_lines]) + "\n" + full[n_lines][:cut], encoding="utf-8")
    return full, partial


def test_resume_from_partial_output(tmp_path):
    from sftlens.trace_tagger import tag_file

    traces, out = tmp_path / "traces.jsonl", tmp_path / "tags.jsonl"
    _write_traces(traces, n=7)
    full, partial = _crash_after(traces, out, 2)
    assert tag_file(traces, out, chunk_records=3) == 7
    assert out.read_text(encoding="utf-8").splitlines() == full
    assert not partial.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tags.jsonl", "traces.jsonl"]


def test_partial_from_another_input_is_refused(tmp_path, run_cli):
    traces, other, out = tmp_path / "traces.jsonl", tmp_path / "other.jsonl", tmp_path / "t.jsonl"
    _write_traces(traces, n=7)
    _write_traces(other, n=9)
    _, partial = _crash_after(traces, out, 2)
    before = partial.read_bytes()
    rc, _, err = run_cli("tag", other, "--out", out)
    assert rc == 2 and err.count("\n") == 1, err
    assert str(partial) in err and "traces.jsonl" in err and "other.jsonl" in err
    assert partial.read_bytes() == before and not out.exists()
    # Another id field is another output too.
    rc, _, err = run_cli("tag", traces, "--out", out, "--id-field", "model")
    assert rc == 2 and "id_field" in err
    # A partial that carries no record of its inputs is never resumed.
    partial.with_name(partial.name + ".json").unlink()
    rc, _, err = run_cli("tag", traces, "--out", out)
    assert rc == 2 and "unknown inputs" in err


def test_small_files_are_split_across_workers():
    from sftlens.trace_tagger._batch import chunk_size

    assert chunk_size(120, 2) == 15  # 8 tasks for 2 workers, not one task of 120
    assert chunk_size(100_000, 4) == 256
    assert chunk_size(3, 8) == 1
    assert chunk_size(0, 1) == 1


@pytest.mark.integration
def test_workers_give_the_same_output(tmp_path):
    from sftlens.trace_tagger import tag_file

    traces = tmp_path / "traces.jsonl"
    _write_traces(traces, n=40)
    tag_file(traces, tmp_path / "a.jsonl")
    tag_file(traces, tmp_path / "b.jsonl", workers=2, chunk_records=7)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
