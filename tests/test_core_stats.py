"""The one statistics module: seeded bootstrap intervals and AUROC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sftlens.core import auroc, bootstrap_ci, percentile_ci, seeded_rng


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=60)
    s = rng.integers(0, 6, size=60).astype(float)  # few distinct scores: many ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auroc_extremes_and_one_class():
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    assert math.isnan(auroc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_streams_are_named_by_seed_and_parts_not_by_call_order():
    a = seeded_rng(0, "strong", "step-3", "accuracy").random(4)
    seeded_rng(0, "weak", "step-3", "accuracy").random(100)  # another row drawn in between
    assert np.array_equal(a, seeded_rng(0, "strong", "step-3", "accuracy").random(4))
    assert not np.array_equal(a, seeded_rng(1, "strong", "step-3", "accuracy").random(4))
    assert not np.array_equal(a, seeded_rng(0, "strong", "step-3", "length").random(4))


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n():
    data = np.random.default_rng(7).normal(2.0, 1.0, size=400)

    def mean(r):
        return r.mean(axis=1)

    v, lo, hi = bootstrap_ci(data, mean, 2000, 0.95, seeded_rng(3, "x"))
    assert v == pytest.approx(data.mean())
    assert lo < v < hi
    # ~ the normal-theory half width 1.96 * sd / sqrt(n) (= 0.098 here).
    assert (hi - lo) / 2 == pytest.approx(1.96 * data.std() / 20, rel=0.15)
    _, lo4, hi4 = bootstrap_ci(data[:100], mean, 2000, 0.95, seeded_rng(3, "x"))
    assert hi4 - lo4 > 1.5 * (hi - lo)
    assert bootstrap_ci(data, mean, 200, 0.95, seeded_rng(3, "x")) == bootstrap_ci(
        data, mean, 200, 0.95, seeded_rng(3, "x")
    )
    assert all(math.isnan(x) for x in bootstrap_ci([], mean, 10, 0.95, seeded_rng(0)))


def test_percentile_interval_ignores_nan_and_is_nan_without_finite_values():
    lo, hi = percentile_ci([np.nan, *range(101)], 0.9)
    assert (lo, hi) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(x) for x in percentile_ci([np.nan, np.nan]))
