"""Per-trace and per-checkpoint tables: join, counts, rates, intervals, checks."""

from __future__ import annotations

import pandas as pd
import pytest

from sftlens.core import DataError
from sftlens.trace_tagger import tag_table, trace_table
from sftlens.trace_tagger._aggregate import COLUMNS


def _tags(i: int, back: int, tokens: float) -> dict:
    counts = {"backtracking": back, "verification": 1, "subgoal_setting": 0,
              "backward_chaining": 0, "hedging": 0}  # fmt: skip
    return {"id": f"t{i}", "ruleset": "r", "spans": [], "counts": counts,
            "verbosity": {"tokens": tokens, "words": tokens / 2}}  # fmt: skip


def _trace(i: int, step: int, correct) -> dict:
    return {"id": f"t{i}", "model": "weak", "task": "countdown",
            "checkpoint": {"step": step}, "score": {"correct": correct}}  # fmt: skip


def _data():
    tags = [_tags(i, back=i % 4, tokens=100.0 * (1 + i % 3)) for i in range(24)]
    traces = [_trace(i, step=10 * (i % 2), correct=(i % 3 == 0)) for i in range(24)]
    return tags, traces


def test_trace_table_rows_and_rates():
    tags, traces = _data()
    df = trace_table(tags, traces)
    assert len(df) == 24
    row = df.set_index("id").loc["t5"]
    assert row["count/backtracking"] == 1 and row["tokens"] == 300
    assert row["per1k/backtracking"] == pytest.approx(1000 / 300)
    assert row["step"] == 10 and not row["correct"]


def test_tag_table_groups_means_and_intervals():
    tags, traces = _data()
    df = tag_table(tags, traces, n_boot=200, seed=3)
    assert list(df.columns) == list(COLUMNS)
    pooled = df[df["correct"].isna() & (df["step"] == 0)].set_index("metric")
    sub = [i for i in range(24) if i % 2 == 0]
    assert pooled.loc["count/backtracking", "n"] == len(sub)
    assert pooled.loc["count/backtracking", "value"] == pytest.approx(
        sum(i % 4 for i in sub) / len(sub)
    )
    tokens = sum(100.0 * (1 + i % 3) for i in sub)
    assert pooled.loc["per1k/backtracking", "value"] == pytest.approx(
        1000 * sum(i % 4 for i in sub) / tokens
    )
    assert (df["ci_low"] <= df["value"] + 1e-9).all() and (
        df["value"] <= df["ci_high"] + 1e-9
    ).all()
    # Correct and incorrect groups partition the pooled one.
    by_c = df[df["correct"].notna() & (df["step"] == 0) & (df["metric"] == "count/verification")]
    assert by_c["n"].sum() == len(sub)
    # Same seed, same table; another seed moves the intervals only.
    pd.testing.assert_frame_equal(df, tag_table(tags, traces, n_boot=200, seed=3))
    other = tag_table(tags, traces, n_boot=200, seed=4)
    assert (other["value"] == df["value"]).all()
    assert not (other["ci_low"] == df["ci_low"]).all()


def test_checks_are_aggregated_over_defined_traces():
    tags, traces = _data()
    checks = {f"t{i}": {"verification_correct_rate": (None if i % 2 else 0.5 + i / 100)}
              for i in range(24)}  # fmt: skip
    tags[0]["checks"] = {"backtrack_precision": 1.0, "backtracks": [{"start": 0}], "n_claims": 3}
    df = tag_table(tags, traces, checks=checks, n_boot=50)
    step0 = df[df["correct"].isna() & (df["step"] == 0)].set_index("metric")
    assert step0.loc["check/verification_correct_rate", "n"] == 12
    assert step0.loc["check/verification_correct_rate", "value"] == pytest.approx(
        sum(0.5 + i / 100 for i in range(0, 24, 2)) / 12
    )
    assert step0.loc["check/backtrack_precision", "n"] == 1
    assert step0.loc["check/n_claims", "value"] == 3
    assert "check/backtracks" not in set(df["metric"])
    step10 = df[df["correct"].isna() & (df["step"] == 10)]
    assert "check/verification_correct_rate" not in set(step10["metric"])


def test_missing_trace_is_a_clear_error():
    tags, traces = _data()
    with pytest.raises(DataError, match="t23"):
        tag_table(tags, traces[:-1])


def test_parquet_round_trip(tmp_path):
    from sftlens.core import read_parquet, write_parquet

    tags, traces = _data()
    df = tag_table(tags, traces, n_boot=20)
    write_parquet(df, tmp_path / "t.parquet")
    back = read_parquet(tmp_path / "t.parquet")
    assert back["correct"].isna().sum() == df["correct"].isna().sum()
    assert str(back["step"].dtype) == "Int64"
