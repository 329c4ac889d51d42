"""Probes on synthetic activations: a planted direction is found, CV never leaks a problem,
the shuffled-label control sits at chance, and the surface baseline catches a surface leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sftlens.core import DataError
from sftlens.probes import difference_in_means, fit_probes, group_folds


def _synthetic(n_groups=40, per_group=10, d=24, signal=1.5, seed=0):
    """Activations with a label along one random unit direction, noise elsewhere."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, d)) + signal * np.outer(2 * y - 1, direction)
    index = pd.DataFrame(
        {
            "group": np.repeat([f"p{i}" for i in range(n_groups)], per_group),
            "label": y,
            "position": rng.integers(0, 100, size=n),
            "token_id": rng.integers(0, 50, size=n),
            "recent_ids": [list(rng.integers(0, 50, size=4)) for _ in range(n)],
        }
    )
    return x.astype(np.float32), y, index, direction


def test_planted_direction_is_recovered():
    x, y, _, direction = _synthetic()
    found = difference_in_means(x, y)
    assert abs(float(found @ direction)) > 0.95


def test_probe_finds_signal_and_controls_sit_at_chance():
    x, _, index, _ = _synthetic()
    table = fit_probes({"blocks.0.hook_resid_post": x}, index, label="label", seed=0)
    v = table.set_index(["probe", "metric"])["value"]
    assert v[("logreg", "auroc")] > 0.9
    assert v[("diffmean", "auroc")] > 0.9
    assert abs(v[("shuffled", "auroc")] - 0.5) < 0.1
    assert abs(v[("surface", "auroc")] - 0.5) < 0.1
    assert v[("logreg", "selectivity_auroc")] > 0.3
    assert set(table["layer"]) == {0}


def test_surface_baseline_catches_a_token_leak():
    """When the label is readable from the current token, the surface control matches the
    probe and selectivity drops to about zero."""
    x, y, index, _ = _synthetic(signal=0.0)
    index = index.assign(token_id=np.where(y == 1, 7, 3))
    # The activations carry the token identity (as embeddings would).
    x = x + np.outer(index["token_id"].to_numpy() == 7, np.ones(x.shape[1])).astype(np.float32)
    table = fit_probes({"blocks.1.hook_resid_post": x}, index, label="label")
    v = table.set_index(["probe", "metric"])["value"]
    assert v[("surface", "auroc")] > 0.95
    assert v[("logreg", "auroc")] > 0.95
    assert v[("logreg", "selectivity_auroc")] < 0.05


def test_grouped_folds_never_share_a_problem():
    groups = np.repeat([f"p{i}" for i in range(13)], 7)
    folds = group_folds(groups, n_splits=5, seed=3)
    assert len(folds) == 5
    seen_test = []
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
        seen_test.extend(te)
    assert sorted(seen_test) == list(range(len(groups)))


def test_where_selects_rows_and_errors_are_one_line():
    x, _, index, _ = _synthetic(n_groups=10)
    index = index.assign(kind=np.where(np.arange(len(index)) % 2 == 0, "a", "b"))
    t = fit_probes({"blocks.0.hook_resid_post": x}, index, "label", where="kind == 'a'")
    assert t["n"].iloc[0] == len(index) // 2
    with pytest.raises(DataError, match="label 'nope' not in the index"):
        fit_probes({"blocks.0.hook_resid_post": x}, index, "nope")
    with pytest.raises(DataError, match="at least 2 groups"):
        group_folds(["same"] * 5)
    acts = {"blocks.0.hook_resid_post": x}
    # A filter that does not parse, names a missing column, calls a function or is not a
    # condition: one line naming the filter and the columns, never a pandas traceback.
    for bad in ("kind ==", "knd == 'a'", "__import__('os').getcwd() == 'a'", "label + 1"):
        with pytest.raises(DataError, match="row filter") as err:
            fit_probes(acts, index, "label", where=bad)
        assert "\n" not in str(err.value) and "kind" in str(err.value)
