"""Matched-design probes: can a probe tell a hidden state when surface features cannot?

A probe that beats chance may only be reading what a surface reader sees (position in the
trace, the numbers written, the token just written). The matched design removes that route:

1. `match_states` pairs each state of the rarer class with the nearest state of the other class
   that a surface reader cannot tell apart from it: equal on the ``exact`` columns, within a
   caliper (in standard deviations) on each ``near`` column, each state used once. Classes are
   balanced by construction, so the surface baseline *on the matched set* should sit near 0.5
   (it is measured, not assumed).
2. `matched_probe` fits the probes, a shuffled-label control and the surface baseline with
   folds grouped by problem, on the unmatched rows and on the matched set, and scores
   out-of-fold predictions by AUROC (within each fold, averaged over folds) with
   percentile-bootstrap intervals over problems.
   Selectivity = probe AUROC - the better control's, resampled jointly, so its interval is
   the interval of the difference.

Nothing here knows about Countdown: any index with a binary label, a group column and surface
columns works (ground-truth step states, tagged spans of a user's own traces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sftlens.core import DataError, percentile_ci

DESIGNS = ("unmatched", "matched")
FOLD_COL = "fold"
# What a surface reader of a step sees: the token just written and how many numbers are left
# (must be equal), position in the trace and the numbers' sizes and distance to the target
# (must be close).
MATCH_EXACT = ("token_id", "state_size")
MATCH_NEAR = ("resp_pos", "step_idx", "max_left", "sum_left", "target_gap")
# Numeric surface columns the baseline may use beyond `surface_features`' own.
SURFACE_EXTRA = ("state_size", "max_left", "sum_left", "target_gap")


def match_states(
    index: Any,
    label: str,
    exact: Sequence[str] = MATCH_EXACT,
    near: Sequence[str] = MATCH_NEAR,
    caliper: float = 0.25,
    within_group: bool = False,
    group_col: str = "group",
    seed: int = 0,
) -> Any:
    """Pair each state of the rarer class with a surface-identical state of the other class.

    Greedy nearest-neighbour matching without replacement: within each stratum of equal
    ``exact`` values (and the same group when `within_group`), states of the rarer class are
    taken in a seeded random order and paired with the nearest unused state of the other class
    whose every ``near`` column lies within ``caliper`` standard deviations (taken over all
    rows); states with no such partner are dropped. Columns missing from the index are skipped.

    Args:
        index: one row per state, with `label` (0/1), `group_col` and the surface columns.
        label: the binary label column.
        exact: columns that must be equal within a pair.
        near: numeric columns that must be close within a pair.
        caliper: the largest allowed difference per ``near`` column, in standard deviations.
        within_group: pair only states of the same group (problem).
        group_col: the group (problem) column.
        seed: the order in which states are matched.

    Returns:
        The matched rows of `index` (original index labels kept), with a ``pair`` column
        (0..n_pairs-1); both classes hold exactly ``n_pairs`` rows.
    """
    if label not in index.columns:
        raise DataError(f"label {label!r} not in the index; columns: {', '.join(index.columns)}.")
    if caliper <= 0:
        raise DataError(f"caliper={caliper}: it must be positive (standard deviations).")
    y = index[label].to_numpy().astype(int)
    exact = [c for c in exact if c in index.columns]
    near = [c for c in near if c in index.columns]
    if within_group:
        exact = [*exact, group_col]
    x = index[near].to_numpy(dtype=np.float64) if near else np.zeros((len(index), 0))
    with np.errstate(invalid="ignore"):
        sd = np.nan_to_num(np.nanstd(x, 0)) if len(x) else np.ones(x.shape[1])
    x = x / np.where(sd > 0, sd, 1.0)
    x = np.nan_to_num(x, nan=1e9)  # a missing value matches only another missing value
    minority = int(y.mean() > 0.5) ^ 1  # the rarer class drives the matching
    keys = (
        index[exact].astype(str).agg("\x1f".join, axis=1).to_numpy()
        if exact
        else np.zeros(len(index), dtype=object)
    )
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        a = rows[y[rows] == minority]
        b = rows[y[rows] != minority]
        if not len(a) or not len(b):
            continue
        free = np.ones(len(b), dtype=bool)
        for i in rng.permutation(a):
            d = np.abs(x[b] - x[i])
            ok = free & (d <= caliper + 1e-12).all(1)
            if not ok.any():
                continue
            dist = np.where(ok, (d**2).sum(1), np.inf)
            j = int(np.argmin(dist))
            free[j] = False
            pairs.append((int(i), int(b[j])))
    pos = np.array([p for pair in pairs for p in pair], dtype=int)
    out = index.iloc[pos].copy()
    out["pair"] = np.repeat(np.arange(len(pairs)), 2)
    return out


def surface_matrix(sub: Any, extra: Sequence[str] = SURFACE_EXTRA) -> Any:
    """The surface baseline's design matrix: `surface_features` plus the ``extra`` numeric
    columns present (standardised). Sparse ``[n, n_features]``."""
    from scipy import sparse

    from sftlens.probes._fit import surface_features

    blocks = [surface_features(sub)]
    cols = [c for c in extra if c in sub.columns]
    if cols:
        v = np.nan_to_num(sub[cols].to_numpy(dtype=np.float64), nan=-1.0)
        blocks.append(sparse.csr_matrix((v - v.mean(0)) / (v.std(0) + 1e-9)))
    return sparse.hstack(blocks).tocsr()


def oof_scores(fit: Any, x: Any, y: np.ndarray, folds: list[tuple], seed: int) -> np.ndarray:
    """Out-of-fold scores ``[n]`` of classifier `fit` (NaN where a fold could not train).

    Compare them within a fold only (`fold_auroc`): each fold's come from a different fit.
    """
    s = np.full(len(y), np.nan)
    for tr, te in folds:
        if len(np.unique(y[tr])) < 2:
            continue  # a training side with one class cannot train a classifier
        s[te] = fit(x[tr], y[tr], seed=seed).score(x[te])
    return s


def weighted_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUROC of scores `s` for labels `y`, once per row of weights `w` ``[B, n]``.

    Ties count one half. A weight is how often a row was drawn (a bootstrap over groups), so
    ``w = 1`` gives the plain AUROC. Returns ``[B]``; NaN where a class has no weight.
    """
    keep = ~np.isnan(s)
    y, s, w = y[keep], s[keep], np.atleast_2d(w)[:, keep]
    order = np.argsort(s, kind="stable")
    y, s, w = y[order], s[order], w[:, order]
    from scipy import sparse

    level = np.concatenate([[0], np.cumsum(s[1:] != s[:-1])])  # tie level of each row
    n_lev = int(level[-1]) + 1 if len(level) else 0

    def per_level(cls: int) -> np.ndarray:  # [B, n_lev] weight of class `cls` at each level
        m = y == cls
        onehot = sparse.csr_matrix(
            (np.ones(int(m.sum())), (np.flatnonzero(m), level[m])), shape=(len(y), n_lev)
        )
        return np.asarray((onehot.T @ w.T).T)

    pos_w, neg_w = per_level(1), per_level(0)
    below = np.cumsum(neg_w, 1) - neg_w  # negative weight strictly below each level
    num = (pos_w * (below + 0.5 * neg_w)).sum(1)
    den = pos_w.sum(1) * neg_w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def fold_auroc(y: np.ndarray, s: np.ndarray, fold: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean over folds of each fold's `weighted_auroc` on its own test rows, ``[B]``.

    Scores from different folds come from different fits, whose offsets differ; pooling them
    would rank one fold's rows against another's. Under no signal, with balanced classes and
    grouped folds, that pooling reads *below* 0.5 (a fold whose test side holds more positives
    trained on fewer, so scores them lower), so each fold is scored on its own.
    """
    w = np.atleast_2d(w)
    per = [weighted_auroc(y[fold == f], s[fold == f], w[:, fold == f]) for f in np.unique(fold)]
    with np.errstate(invalid="ignore"):
        stacked = np.vstack(per)
        ok = ~np.isnan(stacked)
        return np.where(ok.any(0), np.nansum(stacked, 0) / np.maximum(ok.sum(0), 1), np.nan)


def group_weights(groups: np.ndarray, universe: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights ``[1 + n_boot, n]``: row 0 all ones, then each row's group drawn
    count when `universe` (the groups) is resampled with replacement, seeded.

    Two analyses given the same `universe` and `seed` see the same resamples, so differences
    between them can be bootstrapped jointly.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(universe), size=(n_boot, len(universe)))
    counts = np.zeros((n_boot, len(universe)))
    np.add.at(counts, (np.repeat(np.arange(n_boot), len(universe)), draws.ravel()), 1.0)
    col = np.searchsorted(universe, groups)
    return np.vstack([np.ones(len(groups)), counts[:, col]])


def design_scores(
    acts: Mapping[str, Any],
    sub: Any,
    label: str,
    hooks: Sequence[str],
    probes: Sequence[str] = ("logreg",),
    n_splits: int = 5,
    seed: int = 0,
    group_col: str = "group",
    fold: Any = None,
) -> Any:
    """Out-of-fold scores of every probe, the shuffled control and the surface baseline.

    Args:
        acts: ``{hook: [n, d_model]}`` aligned with the rows of `sub`.
        sub: the rows to probe (label, group and surface columns).
        label: the binary label column.
        hooks: hooks to probe.
        probes: probe kinds from the registry (``logreg``, ``diffmean``).
        n_splits: folds, grouped by `group_col` (no problem on both sides).
        seed: folds, label shuffle, solvers.
        group_col: the group (problem) column: folds never split one.
        fold: a fold number per row of `sub` to use instead of drawing grouped folds.

    Returns:
        Long DataFrame ``row, group, fold, y, hook, layer, probe, score`` (one row per state
        and scorer; ``probe`` is a kind, ``shuffled`` or ``surface``; surface has hook
        ``surface``; ``fold`` is the fold whose test side held the state; ``y`` is the
        label scored against, shuffled for the ``shuffled`` control; ``group`` is the
        bootstrap's unit).
    """
    import pandas as pd

    from sftlens.probes._fit import (
        PROBES,
        _as_numpy,
        _fit_sparse_logreg,
        fit_logreg,
        group_folds,
    )
    from sftlens.probes._lens import hook_layer

    y = sub[label].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        raise DataError(f"label {label!r} has one class only in the selected rows.")
    groups = sub[group_col].astype(str).to_numpy()
    if fold is None:
        folds = group_folds(groups, n_splits, seed)
        fold = np.zeros(len(y), dtype=int)
        for f, (_, te) in enumerate(folds):
            fold[te] = f
    else:
        fold = np.asarray(fold, dtype=int)
        folds = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in np.unique(fold)]
    y_shuf = np.random.default_rng(seed).permutation(y)
    rows = np.arange(len(y))
    parts = []

    def add(hook: str, layer: int, probe: str, s: np.ndarray, labels: np.ndarray = y) -> None:
        parts.append(
            pd.DataFrame(
                {"row": rows, "group": groups, "fold": fold, "y": labels, "hook": hook,
                 "layer": layer, "probe": probe, "score": s}
            )
        )  # fmt: skip

    add(
        "surface",
        -1,
        "surface",
        oof_scores(_fit_sparse_logreg, surface_matrix(sub), y, folds, seed),
    )
    for h in hooks:
        x = _as_numpy(acts[h])
        # Control task: shuffled labels to train and to test on (chance by construction; scored
        # against the true labels it would align with any strong direction by luck's sign).
        add(h, hook_layer(h), "shuffled", oof_scores(fit_logreg, x, y_shuf, folds, seed), y_shuf)
        for kind in probes:
            add(h, hook_layer(h), kind, oof_scores(PROBES.get(kind), x, y, folds, seed))
    return pd.concat(parts, ignore_index=True)


def score_table(scores: Any, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> Any:
    """AUROC and selectivity with bootstrap intervals over groups, from `design_scores` output.

    Args:
        scores: long out-of-fold scores (``design`` column optional; one block per design).
        n_boot: bootstrap resamples of the groups (problems).
        ci: interval level.
        seed: resampling seed (the same seed gives the same resamples for the same groups).

    Returns:
        Long DataFrame ``design, hook, layer, probe, metric, value, lo, hi, n, n_pos,
        n_groups``; metric ``auroc`` for every scorer and ``selectivity`` (probe AUROC minus the
        better of the shuffled and surface AUROC, per resample) for probe kinds.
    """
    import pandas as pd

    if "design" not in scores.columns:
        scores = scores.assign(design="all")
    out = []
    for design, blk in scores.groupby("design", sort=False):
        first = blk[blk["probe"] == "surface"]
        groups = first["group"].to_numpy()
        universe = np.unique(groups)
        w = group_weights(groups, universe, n_boot, seed)
        y = first["y"].to_numpy()
        base = {
            "design": design,
            "n": int(len(y)),
            "n_pos": int(y.sum()),
            "n_groups": int(len(universe)),
        }
        auc = {}
        for (hook, probe), g in blk.groupby(["hook", "probe"], sort=False):
            auc[(hook, probe)] = fold_auroc(
                g["y"].to_numpy(), g["score"].to_numpy(), g["fold"].to_numpy(), w
            )
        layers = blk.groupby("hook")["layer"].first()
        surf = auc[("surface", "surface")]
        for (hook, probe), a in auc.items():
            meta = {**base, "hook": hook, "layer": int(layers[hook]), "probe": probe}
            out.append({**meta, "metric": "auroc", "value": a[0], **_lohi(a[1:], ci)})
            if probe in ("surface", "shuffled"):
                continue
            sel = a - np.fmax(surf, auc[(hook, "shuffled")])
            out.append({**meta, "metric": "selectivity", "value": sel[0], **_lohi(sel[1:], ci)})
    return pd.DataFrame(out)


def _lohi(draws: np.ndarray, ci: float) -> dict[str, float]:
    lo, hi = percentile_ci(draws, ci)
    return {"lo": lo, "hi": hi}


def matched_probe(
    acts: Any,
    index: Any = None,
    label: str = "dead_end",
    where: str | None = None,
    hooks: Sequence[str] | None = None,
    exact: Sequence[str] = MATCH_EXACT,
    near: Sequence[str] = MATCH_NEAR,
    caliper: float = 0.25,
    within_group: bool = False,
    probes: Sequence[str] = ("logreg",),
    n_splits: int = 5,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    group_col: str = "group",
) -> tuple[Any, Any]:
    """Probe `label` on all selected states and on a surface-matched, balanced subset of them.

    Args:
        acts: an `ActivationCache` or ``{hook: [n, d_model]}`` aligned with `index`.
        index: the index DataFrame (from the cache when omitted).
        label: binary label column.
        where: row filter over the index columns (see `select_rows`).
        hooks: hooks to probe (default: all).
        exact, near, caliper, within_group: the matching (see `match_states`).
        probes: probe kinds (``logreg``, ``diffmean``).
        n_splits: folds grouped by problem (drawn once; pairs are matched within a fold).
        n_boot: bootstrap resamples over problems.
        ci: interval level.
        seed: matching order, folds, shuffle, resamples.
        group_col: the group (problem) column.

    Returns:
        ``(table, scores)``: the `score_table` for the designs ``unmatched`` and ``matched``
        (with ``n_pairs``, the matched pairs, on every row; pairs are formed within a fold),
        and the out-of-fold scores
        (`design_scores` columns plus ``design``), from which `selectivity_difference`
        compares two models.
    """
    import pandas as pd

    from sftlens.probes._fit import _as_numpy, activation_source, group_folds, select_rows

    index, hooks, load = activation_source(acts, index, hooks, "matched_probe")
    mask = select_rows(index, where)
    sub = index[mask].reset_index(drop=True)
    if label not in sub.columns:
        raise DataError(f"label {label!r} not in the index; columns: {', '.join(sub.columns)}.")
    # Folds first, then pairs within a fold: a pair split between training and test would leave
    # the training side one state too many of the partner's class with exactly those surface
    # features, and the held-out state would be scored against its class (matched data read
    # below 0.5 under no signal). Both designs use these folds.
    fold = np.zeros(len(sub), dtype=int)
    for f, (_, te) in enumerate(group_folds(sub[group_col].astype(str).to_numpy(), n_splits, seed)):
        fold[te] = f
    sub[FOLD_COL] = fold
    matched = match_states(
        sub, label, (*exact, FOLD_COL), near, caliper, within_group, group_col, seed
    )
    n_pairs = int(matched["pair"].nunique()) if len(matched) else 0
    full = {h: _as_numpy(load(h))[mask] for h in hooks}
    designs = {"unmatched": (sub, full)}
    if n_pairs >= 2 and matched[group_col].nunique() >= 2:
        rows = matched.index.to_numpy()
        designs["matched"] = (
            matched.reset_index(drop=True),
            {h: a[rows] for h, a in full.items()},
        )
    scores = pd.concat(
        [
            design_scores(
                a, s, label, hooks, probes, seed=seed, group_col=group_col, fold=s[FOLD_COL]
            ).assign(design=d)
            for d, (s, a) in designs.items()
        ],
        ignore_index=True,
    )
    table = score_table(scores, n_boot, ci, seed).assign(n_pairs=n_pairs, label=label)
    return table, scores
