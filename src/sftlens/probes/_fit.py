"""Linear probes with grouped cross-validation and the controls that make them mean something.

Per hook: logistic regression and difference-in-means, scored by AUROC and accuracy under
`GroupKFold` on the problem id (no problem is in both train and test of a fold). Two controls:
the same logistic probe trained on shuffled labels (should sit at chance), and a *surface
baseline*: a logistic model on surface features only (position, tokens so far, step count, the
current token's identity, a bag of recent tokens). A probe is only evidence of a represented
variable if it beats the better control: selectivity = probe - max(shuffled, surface).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sftlens.core import DataError, Registry, auroc, where_mask

PROBES: Registry[Any] = Registry("probe")
SURFACE_NUMERIC = ("position", "resp_pos", "step_idx")
SURFACE_TOKEN = "token_id"
SURFACE_BAG = "recent_ids"
CONTROLS = ("shuffled", "surface")
NEWTON_MAX_DIM = 1024


def group_folds(groups: Sequence[Any], n_splits: int = 5, seed: int = 0) -> list[tuple]:
    """Train/test index pairs where every group (problem) lies wholly on one side.

    Args:
        groups: one group key per row, ``[n]``.
        n_splits: folds (capped at the number of groups).
        seed: shuffles which groups share a fold.

    Returns:
        ``[(train_idx, test_idx), ...]`` as integer arrays.
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise DataError(f"grouped CV needs at least 2 groups (problems); got {n_groups}.")
    k = min(n_splits, n_groups)
    gkf = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(gkf.split(np.zeros(len(groups)), groups=groups))


def activation_source(acts: Any, index: Any, hooks: Any, who: str) -> tuple[Any, list, Any]:
    """``(index, hooks, load)`` of a cache, or of raw ``{hook: [n, d_model]}`` activations with
    their `index` (a `DataError` naming `who` when it is missing); ``load(hook)`` gives one
    hook's activations."""
    from sftlens.probes._cache import ActivationCache

    if isinstance(acts, ActivationCache):
        return (acts.index if index is None else index), list(hooks or acts.hooks), acts.load
    if index is None:
        raise DataError(f"{who} needs the index DataFrame when given raw activations.")
    return index, list(hooks or acts), acts.__getitem__


def select_rows(index: Any, where: str | None) -> np.ndarray:
    """Boolean mask of the index rows a ``--where`` filter keeps (all rows when None).

    The filter compares index columns with constants ("position_kind == 'step_end' and
    dead_end == 1", ``kind in ['a', 'b']``), parsed by `sftlens.core.where_mask`, which can call
    nothing. A filter outside that grammar, naming a missing column or not a true/false
    condition is a `DataError` naming it and the columns.
    """
    return where_mask(index, where)


def _logreg(d: int, C: float = 1.0, seed: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Newton-Cholesky converges in a few exact steps for modest widths (10x faster than lbfgs
    # here); past ~1k features its d x d solve costs more than lbfgs' iterations.
    solver = "newton-cholesky" if d <= NEWTON_MAX_DIM else "lbfgs"
    return make_pipeline(
        StandardScaler(with_mean=True),
        LogisticRegression(C=C, solver=solver, max_iter=2000, random_state=seed),
    )


@PROBES.register("logreg")
def fit_logreg(x: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    """Standardised L2 logistic regression; returns ``score(x) -> [n]`` and ``predict``."""
    model = _logreg(x.shape[1], seed=seed).fit(x, y)
    return _Scored(lambda z: model.decision_function(z), lambda z: model.predict(z))


@PROBES.register("diffmean")
def fit_diffmean(x: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    """Difference of class means; threshold halfway between the projected class means."""
    d = difference_in_means(x, y)
    mid = 0.5 * (x[y == 1] @ d).mean() + 0.5 * (x[y == 0] @ d).mean()
    return _Scored(lambda z: z @ d - mid, lambda z: (z @ d > mid).astype(int))


class _Scored:
    def __init__(self, score: Any, predict: Any) -> None:
        self.score = score
        self.predict = predict


def difference_in_means(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unit direction ``mean(x[y==1]) - mean(x[y==0])``; `x` is ``[n, d]``, returns ``[d]``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        raise DataError("difference-in-means needs both classes; the labels are constant.")
    d = x[y == 1].mean(0) - x[y == 0].mean(0)
    return d / (np.linalg.norm(d) + 1e-12)


def surface_features(index: Any, bag_vocab: int | None = None) -> Any:
    """Surface-only design matrix from an index DataFrame (sparse, ``[n, n_features]``).

    Uses whichever of these columns exist: ``position``, ``resp_pos`` (tokens since the
    response began), ``step_idx`` (steps so far), ``token_id`` (one-hot) and ``recent_ids``
    (list of recent token ids, as a bag of counts).
    """
    from scipy import sparse

    n = len(index)
    blocks = []
    num = [c for c in SURFACE_NUMERIC if c in index.columns]
    if num:
        v = index[num].to_numpy(dtype=np.float64)
        v = (v - v.mean(0)) / (v.std(0) + 1e-9)
        blocks.append(sparse.csr_matrix(v))
    vocab = bag_vocab
    if vocab is None:
        ids = []
        if SURFACE_TOKEN in index.columns:
            ids.append(int(index[SURFACE_TOKEN].max()))
        if SURFACE_BAG in index.columns:
            ids.append(max((max(r) for r in index[SURFACE_BAG] if len(r)), default=0))
        vocab = max(ids, default=0) + 1
    if SURFACE_TOKEN in index.columns:
        tok = index[SURFACE_TOKEN].to_numpy(dtype=np.int64)
        blocks.append(sparse.csr_matrix((np.ones(n), (np.arange(n), tok)), shape=(n, vocab)))
    if SURFACE_BAG in index.columns:
        rows, cols = [], []
        for i, r in enumerate(index[SURFACE_BAG]):
            rows.extend([i] * len(r))
            cols.extend(int(t) for t in r)
        data = np.ones(len(rows))
        blocks.append(sparse.csr_matrix((data, (rows, cols)), shape=(n, vocab)))
    if not blocks:
        raise DataError(
            "no surface feature columns in the index; expected some of "
            f"{', '.join((*SURFACE_NUMERIC, SURFACE_TOKEN, SURFACE_BAG))}."
        )
    return sparse.hstack(blocks).tocsr()


def _cv_scores(fit: Any, x: Any, y: np.ndarray, folds: list[tuple], seed: int) -> dict[str, list]:
    """AUROC and accuracy per fold."""
    out: dict[str, list[float]] = {"auroc": [], "accuracy": []}
    for tr, te in folds:
        if len(np.unique(y[tr])) < 2:
            continue  # a fold whose training side has one class cannot train a classifier
        m = fit(x[tr], y[tr], seed=seed)
        out["auroc"].append(auroc(y[te], m.score(x[te])))
        out["accuracy"].append(float((m.predict(x[te]) == y[te]).mean()))
    return out


def _rows(base: dict, probe: str, scores: dict[str, list[float]]) -> list[dict]:
    rows = []
    for metric, vals in scores.items():
        v = np.array([s for s in vals if not np.isnan(s)])
        rows.append(
            {
                **base,
                "probe": probe,
                "metric": metric,
                "value": float(v.mean()) if len(v) else float("nan"),
                "std": float(v.std()) if len(v) else float("nan"),
                "n_folds": int(len(v)),
            }
        )
    return rows


def fit_probes(
    acts: Any,
    index: Any = None,
    label: str = "label",
    hooks: Sequence[str] | None = None,
    where: str | None = None,
    group_col: str = "group",
    probes: Sequence[str] = ("logreg", "diffmean"),
    n_splits: int = 5,
    seed: int = 0,
    surface: bool = True,
) -> Any:
    """Fit probes for one binary label at every hook, with grouped CV and both controls.

    Args:
        acts: an `ActivationCache`, or a mapping ``{hook: [n, d_model]}`` (tensor or array).
        index: the index DataFrame aligned with `acts` (taken from the cache when omitted).
        label: the label column (bool or 0/1).
        hooks: hooks to probe (default: all).
        where: a pandas query selecting rows (``"position_kind == 'step_end'"``).
        group_col: grouping column for `GroupKFold` (the problem id).
        probes: probe kinds (``logreg``, ``diffmean``).
        n_splits: CV folds.
        seed: fold assignment, shuffled labels and solvers.
        surface: also fit the surface baseline (once; it does not depend on the hook).

    Returns:
        Long DataFrame with columns ``hook, layer, probe, metric, value, std, n_folds, n,
        n_pos, n_groups, label``; probe is a kind, ``shuffled`` or ``surface``; metric is
        ``auroc``, ``accuracy`` or (for probe kinds) ``selectivity_auroc`` and
        ``selectivity_accuracy`` = probe - the better control.
    """
    import pandas as pd

    from sftlens.probes._lens import hook_layer

    index, hooks, load = activation_source(acts, index, hooks, "fit_probes")
    if label not in index.columns:
        raise DataError(f"label {label!r} not in the index; columns: {', '.join(index.columns)}.")
    mask = select_rows(index, where)
    sub = index[mask].reset_index(drop=True)
    y = sub[label].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        raise DataError(
            f"label {label!r} has one class only in the selected rows; nothing to probe."
        )
    groups = sub[group_col].astype(str).to_numpy()
    folds = group_folds(groups, n_splits, seed)
    rng = np.random.default_rng(seed)
    y_shuf = rng.permutation(y)
    base = {
        "label": label,
        "n": int(len(y)),
        "n_pos": int(y.sum()),
        "n_groups": int(len(np.unique(groups))),
    }
    rows: list[dict] = []
    surface_rows: list[dict] = []
    if surface:
        xs = surface_features(sub)
        surface_rows = _rows(
            {**base, "hook": "surface", "layer": -1},
            "surface",
            _cv_scores(_fit_sparse_logreg, xs, y, folds, seed),
        )
    for h in hooks:
        x = _as_numpy(load(h))[mask]
        hb = {**base, "hook": h, "layer": hook_layer(h)}
        # Control task: shuffled labels for training and testing alike (chance by construction).
        ctrl = _rows(hb, "shuffled", _cv_scores(fit_logreg, x, y_shuf, folds, seed))
        ctrl += [{**r, "hook": h, "layer": hook_layer(h)} for r in surface_rows]
        best = {
            m: np.nanmax([r["value"] for r in ctrl if r["metric"] == m])
            for m in ("auroc", "accuracy")
        }
        for kind in probes:
            fit = PROBES.get(kind)
            pr = _rows(hb, kind, _cv_scores(fit, x, y, folds, seed))
            for r in list(pr):
                pr.append(
                    {
                        **r,
                        "metric": f"selectivity_{r['metric']}",
                        "value": r["value"] - best[r["metric"]],
                    }
                )
            rows.extend(pr)
        rows.extend(ctrl)
    return pd.DataFrame(rows)


def _fit_sparse_logreg(x: Any, y: np.ndarray, seed: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1.0, solver="liblinear", max_iter=2000, random_state=seed).fit(x, y)
    return _Scored(lambda z: m.decision_function(z), lambda z: m.predict(z))


def _as_numpy(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


def probe_directions(
    acts: Mapping[str, Any] | Any,
    index: Any,
    label: str,
    hooks: Sequence[str] | None = None,
    where: str | None = None,
) -> dict[str, np.ndarray]:
    """Difference-in-means unit directions fitted on all selected rows, ``{hook: [d_model]}``
    (for steering)."""
    index, hooks, load = activation_source(acts, index, hooks, "probe_directions")
    mask = select_rows(index, where)
    y = index[label].to_numpy().astype(int)[mask]
    return {h: difference_in_means(_as_numpy(load(h))[mask], y) for h in hooks}
