"""Agreement of predicted sentence labels with a judge's, with bootstrap intervals by trace.

Per label: precision, recall and F1 over labelled chunks; the rank correlation (Spearman) of
per-trace counts, predicted against the judge's; the count ratio (predicted / judge); and what
the judge labelled each false positive instead. Intervals resample whole traces (a file with
fewer than `MIN_TRACES` traces resamples windows of `WINDOW` consecutive chunks instead, and
correlates counts per window; the result says which).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

MIN_TRACES = 5
WINDOW = 25


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray):
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        r = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return p, r, f


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def _interval(values: np.ndarray) -> list[float]:
    v = values[~np.isnan(values)]
    if not len(v):
        return [float("nan"), float("nan")]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]


def agreement(
    pred: Sequence[Sequence[bool]],
    gold: Sequence[Sequence[bool]],
    judge_tags: Sequence[Sequence[frozenset[str]]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Agreement on one label over traces.

    Args:
        pred: per trace, per chunk: predicted to carry the label.
        gold: the same shape: the judge gave a mapped tag.
        judge_tags: the judge's tags per chunk (for the false-positive confusion table).
        n_boot: bootstrap resamples of traces (or windows); 0 gives no intervals.
        seed: bootstrap seed.

    Returns:
        ``precision``, ``recall``, ``f1``, ``count_corr``, ``count_ratio`` (each a float),
        ``ci`` (metric -> [low, high]), ``n_pred``, ``n_judge``, ``n_chunks``, ``units``
        ("traces" or "windows of 25 chunks"), ``n_units``, ``false_positive_tags``
        (judge tag -> chunks).
    """
    if len(pred) >= MIN_TRACES:
        units_p = [np.asarray(p, bool) for p in pred]
        units_g = [np.asarray(g, bool) for g in gold]
        unit_name = "traces"
    else:
        flat_p = np.concatenate([np.asarray(p, bool) for p in pred]) if pred else np.zeros(0, bool)
        flat_g = np.concatenate([np.asarray(g, bool) for g in gold]) if gold else np.zeros(0, bool)
        cuts = range(0, len(flat_p), WINDOW)
        units_p = [flat_p[i : i + WINDOW] for i in cuts]
        units_g = [flat_g[i : i + WINDOW] for i in cuts]
        unit_name = f"windows of {WINDOW} chunks"
    tp = np.array([(p & g).sum() for p, g in zip(units_p, units_g, strict=True)], float)
    fp = np.array([(p & ~g).sum() for p, g in zip(units_p, units_g, strict=True)], float)
    fn = np.array([(~p & g).sum() for p, g in zip(units_p, units_g, strict=True)], float)
    npred, ngold = tp + fp, tp + fn
    p, r, f = (float(x) for x in _f1(tp.sum(), fp.sum(), fn.sum()))
    out = {
        "precision": p,
        "recall": r,
        "f1": f,
        "count_corr": _spearman(npred, ngold),
        "count_ratio": float(npred.sum() / ngold.sum()) if ngold.sum() else float("nan"),
        "n_pred": int(npred.sum()),
        "n_judge": int(ngold.sum()),
        "n_chunks": int(sum(len(u) for u in units_p)),
        "units": unit_name,
        "n_units": len(units_p),
    }
    ci: dict[str, list[float]] = {}
    if n_boot > 0 and len(units_p) > 1:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(units_p), size=(n_boot, len(units_p)))
        bp, br, bf = _f1(tp[idx].sum(1), fp[idx].sum(1), fn[idx].sum(1))
        ci = {"precision": _interval(bp), "recall": _interval(br), "f1": _interval(bf)}
        corr = np.array([_spearman(npred[i], ngold[i]) for i in idx])
        ci["count_corr"] = _interval(corr)
        with np.errstate(invalid="ignore", divide="ignore"):
            ci["count_ratio"] = _interval(npred[idx].sum(1) / ngold[idx].sum(1))
    out["ci"] = ci
    if judge_tags is not None:
        conf: Counter[str] = Counter()
        for p_t, g_t, tags in zip(pred, gold, judge_tags, strict=True):
            for pp, gg, ts in zip(p_t, g_t, tags, strict=True):
                if pp and not gg:
                    conf.update(sorted(ts) or ["(none)"])
        out["false_positive_tags"] = dict(conf.most_common())
    return out


def format_row(name: str, m: dict) -> str:
    """One markdown table row: name, P, R, F1 (interval), count correlation (interval), ratio."""

    def ci(key: str) -> str:
        lo_hi = m["ci"].get(key)
        return f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else ""

    return (
        f"| {name} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f}{ci('f1')} | "
        f"{m['count_corr']:.2f}{ci('count_corr')} | {m['count_ratio']:.2f} | {m['n_pred']} | "
        f"{m['n_judge']} | {m['n_chunks']} |"
    )


TABLE_HEADER = (
    "| label | precision | recall | F1 [95% CI] | count corr [95% CI] | count ratio | predicted | "
    "judge | chunks |\n|---|---|---|---|---|---|---|---|---|"
)
