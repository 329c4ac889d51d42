"""``tag-fit``: fit the learned layer to a researcher's labelled traces, and measure it.

1. Read the labelled files; map judge tags to tagger labels; group traces by problem.
2. Split each file's problems: the first half (sorted by name) is the tuning split, the rest is
   held out. A file with one problem has no held-out split (it only tunes).
3. Run the rules on every trace and compute each chunk's features (`_features`).
4. Per label, fit a logistic regression (L2, balanced classes, lbfgs: deterministic) on the
   tuning chunks of the files that use the label; its decision threshold is the one with the
   best F1 on out-of-fold predictions over three folds of tuning problems.
5. Round and prune the weights, load them back as a `Calibration`, and measure *that*: per
   file, split and label, against the rules alone, with bootstrap intervals by trace; plus a
   learning curve (held-out F1 after fitting on 50, 100, 200, 500 tuning sentences).

A label is fitted and measured only on files whose judge uses a tag mapped to it: a file that
never says "backtracking" is no evidence that its sentences are not backtracks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sftlens.core import ConfigError, file_sha256
from sftlens.trace_tagger._agreement import agreement
from sftlens.trace_tagger._calibration import FEATURE_SPEC, FORMAT, FORMAT_VERSION, Calibration
from sftlens.trace_tagger._features import assign_spans, unit_features
from sftlens.trace_tagger._labelled import LabelledTrace, check_map, label_targets, read_labelled
from sftlens.trace_tagger._rules import LABELS
from sftlens.trace_tagger._ruleset import RULESET_ID

CURVE_SIZES = (50, 100, 200, 500)
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)


@dataclasses.dataclass
class FitConfig:
    """How `fit_calibration` fits.

    Attributes:
        c: inverse L2 strength of the logistic regression.
        min_count: a feature is kept when it occurs in at least this many tuning chunks.
        n_boot: bootstrap resamples for the intervals (0: none).
        seed: seed of the bootstrap and of the learning curve's samples.
        curve_sizes: tuning sentences per learning-curve point.
        prune: weights smaller than this in magnitude are dropped from the file (the figures
            are measured after pruning).
        tune_half: which half of the sorted problems tunes, ``first`` or ``second`` (the
            other is held out; ``second`` checks how much a figure depends on the split).
    """

    c: float = 0.1
    min_count: int = 2
    n_boot: int = 1000
    seed: int = 0
    curve_sizes: tuple[int, ...] = CURVE_SIZES
    prune: float = 0.02
    tune_half: str = "first"


@dataclasses.dataclass
class _File:
    name: str
    sha256: str
    grouping: str
    traces: list[LabelledTrace]
    held_out: list[bool]  # per trace
    features: list[list[set[str]]]  # per trace, per chunk
    rule_labels: list[list[set[str]]]  # per trace, per chunk: labels the rules give
    speaks: dict[str, bool]


def rule_features(tagger, traces: Sequence[LabelledTrace]):
    """Per trace: the chunks' feature sets and the labels the rules give each chunk."""
    feats, rule_labels = [], []
    for tr, tags in zip(traces, tagger.tag_many([t.text for t in traces]), strict=True):
        spans = [(sp["start"], sp["end"], f"{sp['label']}.{sp['rule']}") for sp in tags["spans"]]
        unit_rules = assign_spans(tr.units, spans)
        feats.append(unit_features(tr.text, tr.units, unit_rules))
        rule_labels.append([{k.split(".", 1)[0] for k in keys} for keys in unit_rules])
    return feats, rule_labels


def _load(
    paths: Sequence[str | os.PathLike], label_map: dict[str, str], tagger, tune_half: str = "first"
) -> list[_File]:
    files = []
    labels = sorted(set(label_map.values()))
    for p in paths:
        traces, grouping = read_labelled(p)
        check_map(traces, label_map, str(p))
        groups = sorted({t.group for t in traces})
        half = -(-len(groups) // 2)
        tune = set(groups[:half] if tune_half == "first" else groups[half:] or groups)
        feats, rule_labels = rule_features(tagger, traces)
        files.append(
            _File(
                Path(p).name, file_sha256(p), grouping, traces,
                [t.group not in tune for t in traces], feats, rule_labels,
                label_targets(traces, label_map, labels),
            )
        )  # fmt: skip
    return files


def _gold(tr: LabelledTrace, label: str, label_map: dict[str, str]) -> np.ndarray:
    return np.array([any(label_map.get(t) == label for t in ts) for ts in tr.tags], bool)


class _Vectorizer:
    """Feature strings -> columns of a sparse binary matrix (vocabulary from the tuning split)."""

    def __init__(self, feature_sets: Sequence[set[str]], min_count: int):
        from collections import Counter

        counts = Counter(f for fs in feature_sets for f in fs)
        vocab = sorted(f for f, c in counts.items() if c >= min_count)
        self.names = vocab
        self.index = {f: i for i, f in enumerate(vocab)}

    def __call__(self, feature_sets: Sequence[set[str]]):
        from scipy.sparse import csr_matrix

        rows, cols = [], []
        for i, fs in enumerate(feature_sets):
            for f in fs:
                j = self.index.get(f)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        data = np.ones(len(rows))
        return csr_matrix((data, (rows, cols)), shape=(len(feature_sets), len(self.names)))


def _best_threshold(prob: np.ndarray, y: np.ndarray) -> float:
    best, best_f = 0.5, -1.0
    for t in THRESHOLDS:
        pred = prob >= t
        tp = float((pred & y).sum())
        f = 2 * tp / (pred.sum() + y.sum()) if pred.sum() + y.sum() else 0.0
        if f > best_f + 1e-12:
            best, best_f = float(t), f
    return best


def fit_label(X, y: np.ndarray, groups: Sequence[str], c: float) -> tuple[np.ndarray, float, float]:
    """Fit one label: ``(weights, intercept, threshold)``; deterministic.

    The threshold is the best-F1 one on out-of-fold probabilities over three folds of groups
    (0.5 when there are fewer than three groups or too few positives).
    """
    from sklearn.linear_model import LogisticRegression

    def fit(Xa, ya):
        if ya.min() == ya.max():
            return np.zeros(X.shape[1]), (8.0 if ya[0] else -8.0)
        m = LogisticRegression(C=c, class_weight="balanced", solver="lbfgs", max_iter=2000)
        m.fit(Xa, ya)
        return m.coef_[0], float(m.intercept_[0])

    threshold = 0.5
    ug = sorted(set(groups))
    if len(ug) >= 3 and y.sum() >= 3:
        fold = {g: i % 3 for i, g in enumerate(ug)}
        folds = np.array([fold[g] for g in groups])
        oof = np.zeros(len(y))
        for k in range(3):
            tr = folds != k
            w, b = fit(X[tr], y[tr])
            oof[~tr] = 1.0 / (1.0 + np.exp(-(X[~tr] @ w + b)))
        threshold = _best_threshold(oof, y)
    w, b = fit(X, y)
    return w, b, threshold


def _round(w: float) -> float:
    return float(f"{w:.4g}")


def _fit_model(files, label_map, labels, cfg: FitConfig, ruleset: str, rows=None) -> Calibration:
    """Fit every label on the tuning chunks (or on `rows`: label -> [(file, trace, chunk)])."""
    tune_feats = [
        fs
        for f in files
        for tr_feats, held in zip(f.features, f.held_out, strict=True)
        if not held
        for fs in tr_feats
    ]
    vec = _Vectorizer(tune_feats, cfg.min_count)
    weights, intercept, threshold = {}, {}, {}
    for lab in labels:
        picks = rows[lab] if rows is not None else [
            (fi, ti, ci)
            for fi, f in enumerate(files) if f.speaks[lab]
            for ti, held in enumerate(f.held_out) if not held
            for ci in range(len(f.traces[ti].units))
        ]  # fmt: skip
        X = vec([files[fi].features[ti][ci] for fi, ti, ci in picks])
        y = np.array([any(label_map.get(t) == lab for t in files[fi].traces[ti].tags[ci])
                      for fi, ti, ci in picks], bool)  # fmt: skip
        groups = [f"{files[fi].name}/{files[fi].traces[ti].group}" for fi, ti, _ in picks]
        if not len(picks):
            raise ConfigError(f"no tuning chunks for label {lab!r}; check --map and the files.")
        w, b, t = fit_label(X, y, groups, cfg.c)
        weights[lab] = {vec.names[j]: _round(w[j]) for j in np.flatnonzero(np.abs(w) >= cfg.prune)}
        intercept[lab], threshold[lab] = _round(b), t
    model = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "ruleset": ruleset,
        "feature_spec": FEATURE_SPEC,
        "labels": list(labels),
        "label_map": dict(sorted(label_map.items())),
        "intercept": intercept,
        "threshold": threshold,
        "weights": weights,
    }
    return Calibration(model, "<fitted>")


def _predict(cal: Calibration, f: _File, ti: int) -> np.ndarray:
    return cal.scores(f.features[ti]) >= cal.threshold


def measure(files, cal: Calibration, label_map, cfg: FitConfig) -> list[dict]:
    """Rows (file, split, label, tagger = fitted | rules) with `agreement` metrics."""
    rows = []
    for f in files:
        preds = [_predict(cal, f, ti) for ti in range(len(f.traces))]
        for split, want_held in (("tuning", False), ("held-out", True)):
            idx = [ti for ti, h in enumerate(f.held_out) if h == want_held]
            if not idx:
                continue
            for j, lab in enumerate(cal.labels):
                if not f.speaks[lab]:
                    continue
                gold = [_gold(f.traces[ti], lab, label_map) for ti in idx]
                tags = [f.traces[ti].tags for ti in idx]
                fitted = [preds[ti][:, j] for ti in idx]
                rules = [np.array([lab in s for s in f.rule_labels[ti]], bool) for ti in idx]
                for name, pred in (("fitted", fitted), ("rules", rules)):
                    m = agreement(pred, gold, tags, n_boot=cfg.n_boot, seed=cfg.seed)
                    rows.append({"file": f.name, "split": split, "label": lab, "tagger": name,
                                 "n_traces": len(idx), **m})  # fmt: skip
    return rows


def learning_curve(files, label_map, labels, cfg: FitConfig, ruleset: str) -> list[dict]:
    """Held-out F1 per file and label after fitting on `cfg.curve_sizes` tuning sentences."""
    rng = np.random.default_rng(cfg.seed)
    pools = {
        lab: [
            (fi, ti, ci)
            for fi, f in enumerate(files) if f.speaks[lab]
            for ti, held in enumerate(f.held_out) if not held
            for ci in range(len(f.traces[ti].units))
        ]
        for lab in labels
    }  # fmt: skip
    out = []
    for n in cfg.curve_sizes:
        if any(n > len(p) for p in pools.values()):
            continue
        rows = {lab: [pool[k] for k in sorted(rng.choice(len(pool), n, replace=False))]
                for lab, pool in pools.items()}  # fmt: skip
        cal = _fit_model(files, label_map, labels, cfg, ruleset, rows)
        for m in measure(files, cal, label_map, dataclasses.replace(cfg, n_boot=0)):
            if m["split"] == "held-out" and m["tagger"] == "fitted":
                out.append({"sentences": n, "file": m["file"], "label": m["label"],
                            "f1": m["f1"], "count_corr": m["count_corr"]})  # fmt: skip
    return out


def fit_calibration(
    paths: Sequence[str | os.PathLike],
    label_map: dict[str, str],
    cfg: FitConfig | None = None,
    ruleset: str = RULESET_ID,
) -> Calibration:
    """Fit the learned layer to labelled files and measure it (see the module docstring).

    Args:
        paths: labelled JSONL files (``id``, ``text``, ``chunks`` with ``start``, ``end``,
            ``text``, ``tags``).
        label_map: judge tag -> tagger label (`parse_maps`).
        cfg: fitting options.
        ruleset: the rule set whose hits are features (recorded in the file).

    Returns:
        The fitted `Calibration`; its ``model`` also holds ``training_files``, ``figures``
        (held-out and tuning, fitted and rules alone, per file and label) and
        ``learning_curve``.
    """
    from sftlens.trace_tagger._tagger import get_tagger

    cfg = cfg or FitConfig()
    if cfg.tune_half not in ("first", "second"):
        raise ConfigError(f"tune_half must be 'first' or 'second', got {cfg.tune_half!r}.")
    if not paths:
        raise ConfigError("give at least one labelled file.")
    labels = [lab for lab in LABELS if lab in set(label_map.values())]
    files = _load(paths, label_map, get_tagger(ruleset), cfg.tune_half)
    for lab in labels:
        if not any(f.speaks[lab] for f in files):
            raise ConfigError(f"label {lab!r}: no file uses a tag mapped to it; check --map.")
    cal = _fit_model(files, label_map, labels, cfg, ruleset)
    cal.model["training_files"] = [
        {"name": f.name, "sha256": f.sha256, "traces": len(f.traces), "grouped_by": f.grouping,
         "held_out_groups": sorted({t.group for t, h in zip(f.traces, f.held_out, strict=True)
                                     if h}),
         "sentences": sum(len(t.units) for t in f.traces),
         "labels": [lab for lab in labels if f.speaks[lab]]}
        for f in files
    ]  # fmt: skip
    cal.model["fit"] = {"c": cfg.c, "min_count": cfg.min_count, "seed": cfg.seed,
                        "n_boot": cfg.n_boot, "split": f"{cfg.tune_half} half of sorted problems tunes"}  # fmt: skip
    cal.model["figures"] = _no_nan(measure(files, cal, label_map, cfg))
    cal.model["learning_curve"] = _no_nan(learning_curve(files, label_map, labels, cfg, ruleset))
    return cal


def _no_nan(obj):
    """Undefined figures (a correlation over constant counts) as JSON null, not NaN."""
    if isinstance(obj, float):
        return None if np.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_nan(v) for v in obj]
    return obj
