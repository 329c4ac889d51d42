"""Per-checkpoint tables: accuracy, pass@k, length, non-termination and refusal with bootstrap CIs.

The table is long format, one row per (model, checkpoint, task, metric): ``model``,
``checkpoint`` (path), ``step``, ``epoch``, ``tokens_seen``, ``task`` (the eval-set name, which
defaults to the task name), ``metric``, ``value``, ``ci_low``, ``ci_high``, ``n`` (problems, the
resampling unit) and ``n_samples`` (traces). Confidence intervals are percentile bootstraps
that resample *problems* with replacement (samples of one problem stay together), seeded per
(model, checkpoint, task, metric) so a row does not depend on the others. The refusal judge's
phrase list and the bootstrap settings are kept in ``DataFrame.attrs`` (and in the parquet
file's metadata).

Metrics:

- ``accuracy``: mean@k, the mean over problems of the fraction of correct samples;
- ``pass@k``: the unbiased estimator 1 - C(n-c, k) / C(n, k) per problem (Chen et al., 2021),
  averaged over problems with at least k samples;
- ``mean_length``, ``median_length``: completion length in tokens;
- ``nontermination_rate``: fraction of samples that hit the token budget (``length``);
- ``refusal_rate``: fraction of samples the refusal judge marks as refusals.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sftlens.core import ConfigError, DataError, read_jsonl, write_parquet
from sftlens.rollout._scoring import TRACE_REQUIRED, TRACE_TYPES

__all__ = ["TABLE_COLUMNS", "checkpoint_table", "pass_at_k", "write_table"]

TABLE_COLUMNS = [
    "model",
    "checkpoint",
    "step",
    "epoch",
    "tokens_seen",
    "task",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "n_samples",
]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with `n` samples of which `c` are correct."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}.")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k) as a product, stable for large n.
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _seed(*parts: Any) -> int:
    h = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little")


def _boot_mean(v: np.ndarray, rng: np.random.Generator, n_boot: int, alpha: float) -> tuple:
    """Mean of per-problem values `v` [P] and its percentile-bootstrap CI."""
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    boots = v[idx].mean(axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return (float(v.mean()), float(lo), float(hi))


def _boot_median(m: np.ndarray, rng: np.random.Generator, n_boot: int, alpha: float) -> tuple:
    """Median over all samples of `m` [P, S] (NaN-padded) with problems resampled."""
    if m.size == 0:
        return (math.nan, math.nan, math.nan)
    idx = rng.integers(0, m.shape[0], size=(n_boot, m.shape[0]))
    boots = np.nanmedian(m[idx].reshape(n_boot, -1), axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return (float(np.nanmedian(m)), float(lo), float(hi))


def _load(traces: Any) -> list[dict]:
    if isinstance(traces, (str, os.PathLike)):
        return list(read_jsonl(Path(traces), required=TRACE_REQUIRED, types=TRACE_TYPES))
    if hasattr(traces, "to_dict") and hasattr(traces, "columns"):
        return traces.to_dict("records")
    return list(traces)


def checkpoint_table(
    traces: str | os.PathLike | Iterable[dict] | Any,
    *,
    ks: Iterable[int] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> Any:
    """The per-checkpoint long-format table of a traces file (or records).

    Args:
        traces: a traces JSONL path, an iterable of trace dicts, or a DataFrame of traces.
        ks: the k of pass@k (default: 1, powers of two below the samples per problem, and
            that number itself).
        n_boot: bootstrap resamples.
        ci: confidence level of the intervals.
        seed: bootstrap seed.

    Returns:
        A pandas DataFrame with `TABLE_COLUMNS`, sorted by model, task, metric, step.
    """
    import pandas as pd

    if n_boot < 1 or not 0 < ci < 1:
        raise ConfigError(f"n_boot {n_boot}, ci {ci}: use n_boot >= 1 and ci in (0, 1).")
    records = _load(traces)
    if not records:
        raise DataError("no traces to tabulate; run `sftlens generate` first.")
    alpha = 1.0 - ci
    groups: dict[tuple, dict[str, list[dict]]] = {}
    ck_info: dict[str, dict] = {}
    judges: dict[str, dict] = {}
    for r in records:
        ck = r["checkpoint"]
        ck_info[ck["path"]] = ck
        task = r.get("eval_set") or r["task"]
        g = groups.setdefault((r["model"], ck["path"], task), {})
        g.setdefault(str(r["problem_id"]), []).append(r)
        j = (r.get("score") or {}).get("refusal_judge")
        if j:
            judges[j.get("id", str(j))] = j
    rows = []
    for (model, path, task), by_problem in groups.items():
        ck = ck_info[path]
        base = {
            "model": model,
            "checkpoint": path,
            "step": ck.get("step"),
            "epoch": ck.get("epoch"),
            "tokens_seen": ck.get("tokens_seen"),
            "task": task,
        }
        for metric, stat, n, n_samples in _group_metrics(
            # Problems by id, samples by index: the input's order does not change the CIs.
            [sorted(by_problem[pid], key=lambda t: t["sample_idx"]) for pid in sorted(by_problem)],
            ks,
            n_boot,
            alpha,
            (seed, model, path, task),
        ):
            rows.append(
                {
                    **base,
                    "metric": metric,
                    "value": stat[0],
                    "ci_low": stat[1],
                    "ci_high": stat[2],
                    "n": n,
                    "n_samples": n_samples,
                }
            )
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    df["_s"] = df["step"].fillna(-1)
    df = df.sort_values(["model", "task", "metric", "_s", "checkpoint"]).drop(columns="_s")
    df = df.reset_index(drop=True)
    df.attrs["bootstrap"] = {"n_boot": n_boot, "ci": ci, "seed": seed, "unit": "problem"}
    df.attrs["refusal_judge"] = list(judges.values())
    return df


def _group_metrics(
    probs: list[list[dict]], ks: Iterable[int] | None, n_boot: int, alpha: float, key: tuple
) -> list[tuple[str, tuple, int, int]]:
    """(metric, (value, ci_low, ci_high), n problems, n samples) for one group's traces."""
    out = []

    def rng(metric: str) -> np.random.Generator:
        # Seeded per row, so a row's CI does not depend on which other rows are computed.
        return np.random.default_rng(_seed(*key, metric))

    # Correctness counts only the samples the verifier could judge (correct is not None).
    judged = [
        [bool(s["score"]["correct"]) for s in ss if s["score"].get("correct") is not None]
        for ss in probs
    ]
    judged = [c for c in judged if c]
    if judged:
        acc = np.array([np.mean(c) for c in judged])
        stat = _boot_mean(acc, rng("accuracy"), n_boot, alpha)
        out.append(("accuracy", stat, len(judged), sum(map(len, judged))))
        for k in _default_ks(max(map(len, judged))) if ks is None else sorted(set(ks)):
            eligible = [c for c in judged if len(c) >= k]
            if eligible:
                v = np.array([pass_at_k(len(c), sum(c), k) for c in eligible])
                stat = _boot_mean(v, rng(f"pass@{k}"), n_boot, alpha)
                out.append((f"pass@{k}", stat, len(eligible), sum(map(len, eligible))))
    n_samples = sum(len(s) for s in probs)
    width = max(len(s) for s in probs)
    lengths = np.full((len(probs), width), np.nan)
    for i, ss in enumerate(probs):
        lengths[i, : len(ss)] = [s["n_tokens"] for s in ss]
    per_mean = np.nanmean(lengths, axis=1)
    out.append(
        (
            "mean_length",
            _boot_mean(per_mean, rng("mean_length"), n_boot, alpha),
            len(probs),
            n_samples,
        )
    )
    out.append(
        (
            "median_length",
            _boot_median(lengths, rng("median_length"), n_boot, alpha),
            len(probs),
            n_samples,
        )
    )
    nonterm = np.array([np.mean([s["finish_reason"] == "length" for s in ss]) for ss in probs])
    stat = _boot_mean(nonterm, rng("nontermination_rate"), n_boot, alpha)
    out.append(("nontermination_rate", stat, len(probs), n_samples))
    refused = [[bool(s["score"]["refused"]) for s in ss if "refused" in s["score"]] for ss in probs]
    refused = [x for x in refused if x]
    if refused:
        v = np.array([np.mean(x) for x in refused])
        stat = _boot_mean(v, rng("refusal_rate"), n_boot, alpha)
        out.append(("refusal_rate", stat, len(refused), sum(map(len, refused))))
    return out


def _default_ks(n: int) -> list[int]:
    ks = {1, n}
    k = 2
    while k < n:
        ks.add(k)
        k *= 2
    return sorted(ks)


def write_table(df: Any, path: str | os.PathLike) -> Path:
    """Write a table as parquet (atomically), its ``attrs`` kept in the file's metadata."""
    return write_parquet(df, path)
