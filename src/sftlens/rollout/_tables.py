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
- ``refusal_rate``: fraction of samples the refusal judge marks as refusals;
- ``unparsed_rate``: multiple choice, fraction of samples with no choice letter to read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sftlens.core import ConfigError, DataError, bootstrap_ci, read_jsonl, seeded_rng, write_parquet
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


def _mean(r: np.ndarray) -> np.ndarray:
    """Per-problem values resampled ``[b, P]`` -> their means ``[b]``."""
    return r.mean(axis=1)


def _median_of_samples(r: np.ndarray) -> np.ndarray:
    """Per-problem samples resampled ``[b, P, S]`` (NaN-padded) -> the median sample ``[b]``."""
    return np.nanmedian(r.reshape(r.shape[0], -1), axis=1)


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
    groups: dict[tuple, dict[str, list[dict]]] = {}
    ck_info: dict[str, dict] = {}
    judges: dict[str, dict] = {}
    for r in records:
        ck = r["checkpoint"]
        # Imported traces may name a step but no path: the (path, step) pair is the checkpoint.
        ck_key = (ck.get("path"), ck.get("step"))
        ck_info[ck_key] = ck
        task = r.get("eval_set") or r["task"]
        g = groups.setdefault((r["model"], ck_key, task), {})
        g.setdefault(str(r["problem_id"]), []).append(r)
        j = (r.get("score") or {}).get("refusal_judge")
        if j:
            judges[j.get("id", str(j))] = j
    rows = []
    for (model, ck_key, task), by_problem in groups.items():
        ck = ck_info[ck_key]
        path = ck_key[0]
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
            ci,
            # Keyed by step, not by path: the same run in another folder gives the same CIs.
            (seed, model, ck.get("step"), task)
            if ck.get("step") is not None
            else (seed, model, path, task),
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
    probs: list[list[dict]], ks: Iterable[int] | None, n_boot: int, ci: float, key: tuple
) -> list[tuple[str, tuple, int, int]]:
    """(metric, (value, ci_low, ci_high), n problems, n samples) for one group's traces."""
    out = []

    def boot(values: np.ndarray, metric: str, statistic=_mean) -> tuple:
        # Seeded per row, so a row's CI does not depend on which other rows are computed.
        return bootstrap_ci(values, statistic, n_boot, ci, seeded_rng(*key, metric))

    # Correctness counts only the samples the verifier could judge (correct is not None).
    judged = [
        [bool(s["score"]["correct"]) for s in ss if s["score"].get("correct") is not None]
        for ss in probs
    ]
    judged = [c for c in judged if c]
    if judged:
        acc = np.array([np.mean(c) for c in judged])
        stat = boot(acc, "accuracy")
        out.append(("accuracy", stat, len(judged), sum(map(len, judged))))
        for k in _default_ks(max(map(len, judged))) if ks is None else sorted(set(ks)):
            eligible = [c for c in judged if len(c) >= k]
            if eligible:
                v = np.array([pass_at_k(len(c), sum(c), k) for c in eligible])
                stat = boot(v, f"pass@{k}")
                out.append((f"pass@{k}", stat, len(eligible), sum(map(len, eligible))))
    width = max(len(s) for s in probs)
    lengths = np.full((len(probs), width), np.nan)
    for i, ss in enumerate(probs):
        lengths[i, : len(ss)] = [np.nan if s["n_tokens"] is None else s["n_tokens"] for s in ss]
    # Imported traces may lack lengths or finish reasons: those metrics are left out, not zero.
    if np.isfinite(lengths).any():
        known = np.isfinite(lengths).any(axis=1)
        per_mean = np.nanmean(lengths[known], axis=1)
        n_known = int(np.isfinite(lengths).sum())
        stat = boot(per_mean, "mean_length")
        out.append(("mean_length", stat, int(known.sum()), n_known))
        stat = boot(lengths[known], "median_length", _median_of_samples)
        out.append(("median_length", stat, int(known.sum()), n_known))
    ended = [[s["finish_reason"] == "length" for s in ss if s["finish_reason"]] for ss in probs]
    ended = [x for x in ended if x]
    if ended:
        nonterm = np.array([np.mean(x) for x in ended])
        stat = boot(nonterm, "nontermination_rate")
        out.append(("nontermination_rate", stat, len(ended), sum(map(len, ended))))
    # Multiple choice: the share of completions with no letter to read (counted as wrong).
    unparsed = [
        [bool(s["score"]["unparsed"]) for s in ss if "unparsed" in s["score"]] for ss in probs
    ]
    unparsed = [x for x in unparsed if x]
    if unparsed:
        v = np.array([np.mean(x) for x in unparsed])
        stat = boot(v, "unparsed_rate")
        out.append(("unparsed_rate", stat, len(unparsed), sum(map(len, unparsed))))
    refused = [[bool(s["score"]["refused"]) for s in ss if "refused" in s["score"]] for ss in probs]
    refused = [x for x in refused if x]
    if refused:
        v = np.array([np.mean(x) for x in refused])
        stat = boot(v, "refusal_rate")
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
