"""Per-checkpoint tables (pass@k, bootstrap CIs), the dip detector and the curve plot."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from sftlens.core import ConfigError, read_parquet
from sftlens.rollout import (
    checkpoint_table,
    detect_dip,
    detect_dips,
    pass_at_k,
    plot_curves,
    write_table,
)


def _trace(model, step, task, pid, idx, correct, n_tokens=10, finish="stop", refused=False):
    return {
        "id": f"{model}/{step}/{task}/{pid}/{idx}",
        "problem_id": pid,
        "task": task,
        "model": model,
        "checkpoint": {
            "path": f"/runs/{model}/step-{step}",
            "step": step,
            "epoch": None,
            "tokens_seen": None,
        },
        "sample_idx": idx,
        "prompt": "p",
        "completion": "c",
        "finish_reason": finish,
        "n_tokens": n_tokens,
        "sampling": {},
        "score": {
            "correct": correct,
            "refused": refused,
            "refusal_judge": {"id": "j1", "phrases": ["no"], "prefix_chars": 0},
        },
    }


def _synthetic(p_by_step, n_problems=100, k=4, seed=0, model="m", task="t"):
    rng = np.random.default_rng(seed)
    out = []
    for step, p in p_by_step.items():
        for i in range(n_problems):
            for j in range(k):
                out.append(_trace(model, step, task, f"q{i}", j, bool(rng.random() < p)))
    return out


@pytest.mark.parametrize(
    "n, c, k", [(4, 0, 1), (4, 1, 1), (4, 2, 2), (5, 1, 3), (6, 6, 4), (8, 3, 8)]
)
def test_pass_at_k_is_the_exact_probability(n, c, k):
    # Brute force: the chance that a random k-subset of the n samples holds a correct one.
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    expected = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_table_values_by_hand():
    traces = [
        _trace("m", 0, "t", "a", 0, True, 4),
        _trace("m", 0, "t", "a", 1, False, 6, finish="length"),
        _trace("m", 0, "t", "b", 0, False, 10, refused=True),
        _trace("m", 0, "t", "b", 1, False, 20, refused=True),
        _trace("m", 0, "t", "c", 0, None, 1),  # not judgeable: left out of accuracy only
    ]
    df = checkpoint_table(traces, n_boot=200)
    v = df.set_index("metric")["value"]
    n = df.set_index("metric")["n"]
    assert v["accuracy"] == pytest.approx(0.25) and n["accuracy"] == 2
    assert v["pass@2"] == pytest.approx(0.5)
    assert v["pass@1"] == pytest.approx(0.25)
    assert v["mean_length"] == pytest.approx((5 + 15 + 1) / 3) and n["mean_length"] == 3
    assert v["median_length"] == pytest.approx(6)
    assert v["nontermination_rate"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert v["refusal_rate"] == pytest.approx(1 / 3)
    assert list(df.columns[:9]) == [
        "model", "checkpoint", "step", "epoch", "tokens_seen", "task", "metric", "value", "ci_low"
    ]  # fmt: skip
    assert (df["ci_low"] <= df["value"] + 1e-12).all() and (
        df["value"] <= df["ci_high"] + 1e-12
    ).all()


def test_bootstrap_is_seeded_and_resamples_problems(tmp_path):
    traces = _synthetic({0: 0.5}, n_problems=50, k=4)
    a = checkpoint_table(traces, seed=1)
    b = checkpoint_table(list(reversed(traces)), seed=1)
    c = checkpoint_table(traces, seed=2)
    cols = ["metric", "value", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert not a["ci_low"].equals(c["ci_low"])
    acc = a.set_index("metric").loc["accuracy"]
    # 50 problems, p = 0.5 with 4 samples each: the 95% CI is about +-0.09.
    assert 0.05 < acc["ci_high"] - acc["ci_low"] < 0.2
    # The same run moved to another folder: same intervals (the seed follows the step).
    moved = [
        {**t, "checkpoint": {**t["checkpoint"], "path": "/elsewhere" + t["checkpoint"]["path"]}}
        for t in traces
    ]
    pd.testing.assert_frame_equal(a[cols], checkpoint_table(moved, seed=1)[cols])
    write_table(a, tmp_path / "t.parquet")
    back = read_parquet(tmp_path / "t.parquet")
    assert back.attrs["refusal_judge"][0]["phrases"] == ["no"]
    assert back.attrs["bootstrap"]["unit"] == "problem"


def _curve(values, half_width=0.02, steps=None):
    steps = steps or [i * 10 for i in range(len(values))]
    return pd.DataFrame(
        {
            "step": steps,
            "value": values,
            "ci_low": [v - half_width for v in values],
            "ci_high": [v + half_width for v in values],
        }
    )


def test_dip_and_recovery_are_found():
    d = detect_dip(_curve([0.50, 0.40, 0.20, 0.35, 0.49, 0.60]))
    assert d.found and d.dip_step == 20 and d.dip_value == pytest.approx(0.20)
    assert d.depth == pytest.approx(0.30)
    assert d.recovered and d.recovery_step == 40
    assert d.exceeded_step == 50
    assert "dip at step 20" in d.describe()


def test_dips_read_a_run_evals_table_and_name_missing_columns():
    """A run's tables/evals.parquet names the eval set `eval`; dips read it like `task`."""
    curve = _curve([0.50, 0.40, 0.20, 0.35, 0.49, 0.60]).assign(
        model="strong", eval="in_domain", metric="accuracy"
    )
    res = detect_dips(curve, "accuracy")
    assert list(res["task"]) == ["in_domain"] and bool(res["found"].iloc[0])
    assert res["dip_step"].iloc[0] == 20
    with pytest.raises(ConfigError, match="no model, task column"):
        detect_dips(curve.drop(columns=["model", "eval"]), "accuracy")


def test_noise_is_not_a_dip():
    # Every point's CI overlaps the base's: wobble, not a dip.
    d = detect_dip(_curve([0.50, 0.47, 0.52, 0.46, 0.51], half_width=0.05))
    assert not d.found and d.dip_step is None
    assert "no significant dip" in d.describe()


def test_monotone_curves():
    assert not detect_dip(_curve([0.1, 0.2, 0.3, 0.4])).found
    down = detect_dip(_curve([0.4, 0.3, 0.2, 0.1]))
    assert down.found and down.dip_step == 30 and not down.recovered


def test_peak_with_direction_up_and_base_step():
    d = detect_dip(_curve([0.1, 0.1, 0.5, 0.1]), direction="up")
    assert d.found and d.dip_step == 20 and d.dip_value == pytest.approx(0.5)
    assert d.recovered and d.recovery_step == 30
    d = detect_dip(_curve([0.9, 0.5, 0.2, 0.5]), base_step=10)
    assert d.base_step == 10 and d.dip_step == 20 and d.recovery_step == 30


def test_dip_on_a_bootstrapped_table_of_synthetic_traces():
    dipping = _synthetic({0: 0.6, 100: 0.3, 200: 0.25, 300: 0.62}, seed=3)
    flat = _synthetic({0: 0.5, 100: 0.5, 200: 0.5, 300: 0.5}, seed=4, model="flat")
    table = checkpoint_table(dipping + flat, n_boot=500)
    d = detect_dip(table, "accuracy", model="m", task="t")
    assert d.found and d.dip_step == 200 and d.recovery_step == 300
    assert not detect_dip(table, "accuracy", model="flat", task="t").found
    with pytest.raises(ConfigError, match="several models"):
        detect_dip(table, "accuracy")
    with pytest.raises(ConfigError, match="metric 'acc' is not in the table"):
        detect_dip(table, "acc", model="m")


def test_plot_writes_png_and_its_csv(tmp_path):
    table = checkpoint_table(
        _synthetic({0: 0.6, 100: 0.2, 200: 0.6}, n_problems=40, seed=5), n_boot=200
    )
    png, csv = plot_curves(table, "accuracy", tmp_path / "acc.png")
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    data = pd.read_csv(csv)
    assert list(data["step"]) == [0, 100, 200]
    assert list(data["is_dip"]) == [False, True, False]
    assert list(data["is_recovery"]) == [False, False, True]
    assert not math.isnan(data["ci_low"][1])
    with pytest.raises(ConfigError, match="nothing to plot"):
        plot_curves(table, "nope", tmp_path / "x.png")
