"""Per-trace and per-checkpoint tables of tag counts, rates, verbosity and task checks.

`trace_table` joins Tags records with Trace records (``id``, ``model``, ``checkpoint.step``,
``task``, ``score.correct``) into one wide row per trace. `tag_table` aggregates it into the
long-format table every plot reads: per (``model``, ``step``, ``task``, ``correct``) group and
metric, the mean over traces with a percentile bootstrap interval over traces. Rows with
``correct`` missing (NA) pool correct and incorrect traces.

Metrics:
    ``count/<label>``: sentences with the label per trace (mean over traces).
    ``per1k/<label>``: the same per 1,000 tokens (total count over total tokens, so long
    traces weigh by their length).
    ``verbosity/<metric>``: mean of each verbosity metric.
    ``check/<name>``: mean of a per-trace task check (e.g. ``verification_correct_rate``),
    over the traces where it is defined (None); checks come from a ``checks`` dict in the Tags
    record or from the `checks` argument (as ``sftlens.tasks.countdown_behaviour_checks``
    returns them; non-scalar entries such as per-span lists are skipped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from sftlens.core import DataError, bootstrap_indices, percentile_ci, seeded_rng
from sftlens.trace_tagger._rules import LABELS

GROUP_KEYS = ("model", "step", "task", "correct")
COLUMNS = (*GROUP_KEYS, "metric", "value", "ci_low", "ci_high", "n")
DEFAULT_BOOTSTRAP = 1000
CI_LEVEL = 0.95


def trace_table(
    tags: Iterable[Mapping],
    traces: Iterable[Mapping],
    checks: Mapping[object, Mapping[str, float | None]] | None = None,
):
    """One row per tagged trace: group keys, counts, per-1k rates, verbosity and checks.

    Raises:
        DataError: a Tags id with no trace, or a duplicate trace id.
    """
    import pandas as pd

    by_id: dict = {}
    for tr in traces:
        if tr.get("id") in by_id:
            raise DataError(f"traces: duplicate id {tr.get('id')!r}; trace ids must be unique.")
        by_id[tr.get("id")] = tr
    rows = []
    for tg in tags:
        tr = by_id.get(tg["id"])
        if tr is None:
            raise DataError(
                f"tags: id {tg['id']!r} is not in the traces; tag the same traces file "
                "(--id-field id) you pass with --traces."
            )
        ckpt = tr.get("checkpoint") or {}
        score = tr.get("score") or {}
        correct = score.get("correct")
        verb = tg.get("verbosity", {})
        tokens = float(verb.get("tokens", 0.0))
        row = {
            "id": tg["id"],
            "model": tr.get("model"),
            # A top-level step (a plain table's column) counts when the checkpoint has none.
            "step": ckpt.get("step") if ckpt.get("step") is not None else tr.get("step"),
            "task": tr.get("task"),
            "correct": None if correct is None else bool(correct),
            "tokens": tokens,
        }
        for label in LABELS:
            c = float(tg["counts"].get(label, 0))
            row[f"count/{label}"] = c
            row[f"per1k/{label}"] = 1000.0 * c / tokens if tokens else 0.0
        for k, v in verb.items():
            row[f"verbosity/{k}"] = float(v)
        merged = {**(tg.get("checks") or {}), **((checks or {}).get(tg["id"]) or {})}
        for k, v in merged.items():
            # Scalars only: a checks dict may also carry per-span detail lists.
            if v is None or isinstance(v, (bool, int, float)):
                row[f"check/{k}"] = np.nan if v is None else float(v)
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df["step"] = df["step"].astype("Int64")
        df["correct"] = df["correct"].astype("boolean")
    return df


def _rows_for_group(df, key: tuple, n_boot: int, seed: int) -> list[dict]:
    n = len(df)
    # One stream per group (core's seeding rule); every metric of the group is read on the
    # same resampled traces.
    rng = seeded_rng(seed, *key)
    idx = bootstrap_indices(n, n_boot, rng) if n_boot else None
    out = []

    def emit(metric: str, value: float, boots: np.ndarray | None, n_used: int) -> None:
        lo, hi = percentile_ci(boots, CI_LEVEL) if boots is not None else (value, value)
        if not np.isfinite(lo):  # no finite resample: the interval collapses to the value
            lo = hi = value
        out.append(dict(zip(GROUP_KEYS, key, strict=True)) | {
            "metric": metric, "value": float(value), "ci_low": float(lo), "ci_high": float(hi),
            "n": int(n_used),
        })  # fmt: skip

    tokens = df["tokens"].to_numpy(float)
    for col in df.columns:
        if col.startswith("per1k/"):
            c = df[f"count/{col[6:]}"].to_numpy(float)
            total = tokens.sum()
            value = 1000.0 * c.sum() / total if total else 0.0
            boots = None
            if idx is not None:
                with np.errstate(invalid="ignore", divide="ignore"):
                    boots = 1000.0 * c[idx].sum(1) / tokens[idx].sum(1)
            emit(col, value, boots, n)
        elif col.startswith(("count/", "verbosity/", "check/")):
            v = df[col].to_numpy(float)
            ok = np.isfinite(v)
            if not ok.any():
                continue
            if ok.all():
                boots = v[idx].mean(1) if idx is not None else None
                emit(col, float(v.mean()), boots, n)
            else:
                # Checks undefined for some traces: resample only the defined ones.
                w = v[ok]
                sub = bootstrap_indices(len(w), n_boot, rng) if n_boot else None
                emit(col, float(w.mean()), w[sub].mean(1) if sub is not None else None, len(w))
    return out


def tag_table(
    tags: Iterable[Mapping],
    traces: Iterable[Mapping],
    checks: Mapping[object, Mapping[str, float | None]] | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
):
    """Long-format table of behaviour metrics per (model, step, task, correct) group.

    Args:
        tags: Tags records (``id``, ``counts``, ``verbosity``, optional ``checks``).
        traces: Trace records joined on ``id``.
        checks: optional id -> {check name: value or None} (e.g. from
            ``sftlens.tasks.countdown_behaviour_checks``), merged over the records' own.
        n_boot: bootstrap resamples over traces (0: intervals collapse to the value).
        seed: bootstrap seed.

    Returns:
        A DataFrame with columns ``model, step, task, correct, metric, value, ci_low, ci_high,
        n``; ``correct`` is NA on rows pooling all traces of a (model, step, task).
    """
    import pandas as pd

    per_trace = trace_table(tags, traces, checks)
    rows: list[dict] = []
    if len(per_trace):
        keys = ["model", "step", "task"]
        frame = per_trace.astype({"model": object, "task": object})
        for gkey, g in frame.groupby(keys, dropna=False, sort=True):
            rows += _rows_for_group(g, (*gkey, None), n_boot, seed)
            for c, gc in g.groupby("correct", dropna=True, sort=True):
                rows += _rows_for_group(gc, (*gkey, bool(c)), n_boot, seed)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["step"] = df["step"].astype("Int64")
    df["correct"] = df["correct"].astype("boolean")
    df["n"] = df["n"].astype("int64")
    return df
