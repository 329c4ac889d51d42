"""Statistics every stage reports the same way: seeded percentile-bootstrap intervals and AUROC.

One seeding rule: the random stream of an interval comes from the user's seed and the names of
what is resampled (model, checkpoint, task, metric, ...) through SHA-256, so a row's interval
depends neither on which other rows are computed nor on their order, and the same inputs and
seed give the same numbers on every machine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["auroc", "bootstrap_ci", "bootstrap_indices", "percentile_ci", "seeded_rng"]


def seeded_rng(seed: int, *parts: Any) -> Any:
    """A numpy ``Generator`` for the stream named by ``(seed, *parts)``.

    Args:
        seed: the user's seed.
        parts: what the stream is for, e.g. ``(model, checkpoint, task, metric)``; compared by
            their ``str``.
    """
    import numpy as np

    h = hashlib.sha256("\x00".join(map(str, (seed, *parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def bootstrap_indices(n: int, n_boot: int, rng: Any) -> Any:
    """Resampling indices: ``[n_boot, n]`` integers in ``0..n-1`` drawn with replacement."""
    return rng.integers(0, n, size=(n_boot, n))


def percentile_ci(boots: Any, ci: float = 0.95) -> tuple[float, float]:
    """The central ``ci`` percentile interval of bootstrap statistics (NaNs ignored; NaN, NaN
    when none is finite)."""
    import numpy as np

    b = np.asarray(boots, dtype=float)
    if not np.isfinite(b).any():
        return (math.nan, math.nan)
    lo, hi = np.nanquantile(b, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return (float(lo), float(hi))


def bootstrap_ci(
    values: Any,
    statistic: Callable[[Any], Any],
    n_boot: int,
    ci: float,
    rng: Any,
) -> tuple[float, float, float]:
    """A statistic of `values` and its percentile-bootstrap interval over rows.

    Args:
        values: ``[n, ...]`` array; rows (the first axis) are the resampled units.
        statistic: maps a stack of samples ``[b, n, ...]`` to ``[b]`` (e.g.
            ``lambda r: r.mean(axis=1)``).
        n_boot: resamples.
        ci: interval level, e.g. 0.95.
        rng: from `seeded_rng`.

    Returns:
        ``(value, ci_low, ci_high)``; all NaN when `values` is empty.
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    value = float(statistic(v[None])[0])
    boots = statistic(v[bootstrap_indices(len(v), n_boot, rng)])
    return (value, *percentile_ci(boots, ci))


def auroc(labels: Sequence[Any], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the probability that a positive outscores a negative, ties
    counting one half (the Mann-Whitney statistic). NaN unless both classes are present.

    Args:
        labels: ``[n]`` truthy for the positive class.
        scores: ``[n]`` higher means more positive.
    """
    import numpy as np

    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    # Average ranks (ties share the mean of their ranks), 1-based.
    uniq, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    ranks = mean_rank[inverse]
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
