"""The run's long-format tables, gathered from every stage's outputs into ``<run>/tables/``.

- ``evals.parquet``: model, base, data, step, eval, metric (accuracy, length, refusal_rate),
  value, ci_low, ci_high, n; from the rollout package's per-checkpoint table.
- ``dips.parquet``: model, eval, metric, dip, dip_step, depth, recovered, verdict; the
  dip-and-recovery detector run on every accuracy curve.
- ``behaviours.parquet``: model, base, step, eval, metric (``<label> per trace``), value; tag
  counts averaged over the traces of each checkpoint.
- ``probes.parquet``, ``refusal.parquet``, ``appropriateness.parquet``: concatenated from the
  probe stages' normalised tables.
- ``probe_compare.parquet``: strong minus weak matched selectivity per checkpoint, with its
  paired interval and verdict (`sftlens.probes.compare_steps`).
- ``causal.parquet``: the causal check of each arm (`sftlens.probes.causal_controls` rows plus
  ``model, step, layer``).
- ``examples.jsonl``: a few tagged traces per checkpoint for the report.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from sftlens.core import read_jsonl, read_parquet, write_jsonl, write_parquet
from sftlens.experiments._report import (
    APPROPRIATENESS_TABLE,
    BEHAVIOURS_TABLE,
    CAUSAL_TABLE,
    DIPS_TABLE,
    EVALS_TABLE,
    EXAMPLES_FILE,
    PROBE_COMPARE_TABLE,
    PROBES_TABLE,
    REFUSAL_TABLE,
)
from sftlens.experiments._spec import ExperimentSpec

PROBE_TABLE = "table.parquet"  # normalised table each probe/refusal stage writes in its folder
# Rollout metric -> report metric.
EVAL_METRICS = {"accuracy": "accuracy", "mean_length": "length", "refusal_rate": "refusal_rate"}


def _arm_meta(spec: ExperimentSpec) -> dict[str, dict]:
    return {
        a.name: {"base": a.checkpoints, "data": "(external series)"}
        if a.external
        else {"base": spec.model(a.model).base, "data": a.data}
        for a in spec.arms
    }


def eval_table(run_dir: Path, spec: ExperimentSpec) -> pd.DataFrame:
    """Per-checkpoint accuracy, length and refusal rate of every arm on every eval set."""
    from sftlens.rollout import checkpoint_table

    meta = _arm_meta(spec)
    frames = []
    for arm in meta:
        f = run_dir / "traces" / arm / "traces.jsonl"
        if not f.is_file():
            continue
        df = checkpoint_table(f, seed=spec.seed)
        df = df[df["metric"].isin(list(EVAL_METRICS))].copy()
        df["metric"] = df["metric"].map(EVAL_METRICS)
        df = df.rename(columns={"task": "eval"})
        df["model"] = arm
        df["base"] = meta[arm]["base"]
        df["data"] = meta[arm]["data"]
        frames.append(df)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    # Refusal rate is only meaningful on harmful prompts; accuracy only where answers exist.
    harmful = {e.name for e in spec.evals if e.task in ("harmful",)}
    keep = (df["metric"] != "refusal_rate") | df["eval"].isin(harmful)
    keep &= ~((df["metric"] == "accuracy") & df["eval"].isin(harmful))
    df = df[keep & df["value"].notna()]
    cols = ["model", "base", "data", "step", "eval", "metric", "value", "ci_low", "ci_high", "n"]
    return df[cols].sort_values(["model", "eval", "metric", "step"]).reset_index(drop=True)


def dip_table(ev: pd.DataFrame) -> pd.DataFrame:
    """The dip-and-recovery detector's verdict on every accuracy / refusal-rate curve."""
    from sftlens.rollout import detect_dip

    rows = []
    for (model, e, metric), c in ev[ev["metric"].isin(["accuracy", "refusal_rate"])].groupby(
        ["model", "eval", "metric"], sort=True
    ):
        c = c.sort_values("step")
        if len(c) < 3:
            continue
        v = detect_dip(c, metric=metric)
        rows.append(
            {
                "model": model,
                "eval": e,
                "metric": metric,
                "dip": bool(v.found),
                "dip_step": v.dip_step,
                "depth": v.depth,
                "recovered": bool(v.recovered) if v.found else None,
                "verdict": v.describe(),
            }
        )
    return pd.DataFrame(rows)


def behaviour_table(run_dir: Path, spec: ExperimentSpec) -> pd.DataFrame:
    """Mean count of each tagged behaviour per trace, per arm, checkpoint and eval set."""
    meta = _arm_meta(spec)
    rows = []
    for arm in meta:
        tf = run_dir / "tags" / f"{arm}.jsonl"
        tr = run_dir / "traces" / arm / "traces.jsonl"
        if not (tf.is_file() and tr.is_file()):
            continue
        where = {
            r["id"]: (r["checkpoint"]["step"], r.get("eval_set") or r["task"])
            for r in read_jsonl(tr, allow_partial_tail=True)
        }
        sums: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        hits: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        n: dict[tuple, int] = defaultdict(int)
        labels: set[str] = set()
        for t in read_jsonl(tf):
            key = where.get(t["id"])
            if key is None:
                continue
            n[key] += 1
            for label, c in (t.get("counts") or {}).items():
                sums[key][label] += float(c)
                hits[key][label] += int(float(c) > 0)
                labels.add(label)
        for key, cnt in n.items():
            for label in sorted(labels):
                base = {"model": arm, "base": meta[arm]["base"], "step": key[0], "eval": key[1]}
                # Count per trace (how much) and share of traces showing it (how often).
                rows.append(
                    {
                        **base,
                        "metric": f"{label} per trace",
                        "value": sums[key][label] / cnt,
                        "n": cnt,
                    }
                )
                rows.append(
                    {**base, "metric": f"{label} rate", "value": hits[key][label] / cnt, "n": cnt}
                )
    return pd.DataFrame(rows)


def examples(run_dir: Path, spec: ExperimentSpec, per_checkpoint: int) -> list[dict]:
    """A few tagged traces per checkpoint (the first eval set), for the report."""
    out = []
    first_eval = spec.evals[0].name if spec.evals else None
    for a in spec.arms:
        tf = run_dir / "tags" / f"{a.name}.jsonl"
        tr = run_dir / "traces" / a.name / "traces.jsonl"
        if not (tf.is_file() and tr.is_file()):
            continue
        tags = {t["id"]: t for t in read_jsonl(tf)}
        shown: dict[int, int] = defaultdict(int)
        for r in read_jsonl(tr, allow_partial_tail=True):
            ev = r.get("eval_set") or r["task"]
            step = r["checkpoint"]["step"]
            if ev != first_eval or shown[step] >= per_checkpoint:
                continue
            shown[step] += 1
            t = tags.get(r["id"], {})
            out.append(
                {
                    "model": a.name,
                    "step": step,
                    "eval": ev,
                    "prompt": r["prompt"],
                    "completion": r["completion"],
                    "correct": (r.get("score") or {}).get("correct"),
                    "spans": t.get("spans", []),
                    "counts": t.get("counts", {}),
                }
            )
    return sorted(out, key=lambda r: (r["model"], r["step"]))


def _concat(run_dir: Path, spec: ExperimentSpec, kind: str) -> pd.DataFrame:
    frames = []
    for a in spec.arms:
        p = run_dir / "probes" / a.name / kind / PROBE_TABLE
        if p.is_file():
            frames.append(read_parquet(p))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def build_tables(run_dir: Path, spec: ExperimentSpec, out: Path) -> None:
    """Write every table of the run into `out` (the stage passes a temporary directory)."""
    out.mkdir(parents=True, exist_ok=True)
    ev = eval_table(run_dir, spec)
    if not ev.empty:
        write_parquet(ev, out / EVALS_TABLE)
        dips = dip_table(ev)
        if not dips.empty:
            write_parquet(dips, out / DIPS_TABLE)
    beh = behaviour_table(run_dir, spec)
    if not beh.empty:
        write_parquet(beh, out / BEHAVIOURS_TABLE)
    for kind, name in (
        ("dead_end", PROBES_TABLE),
        ("refusal", REFUSAL_TABLE),
        ("appropriateness", APPROPRIATENESS_TABLE),
        ("causal", CAUSAL_TABLE),
    ):
        df = _concat(run_dir, spec, kind)
        if not df.empty:
            write_parquet(df, out / name)
    # Strong vs weak on the same problems (the probe.compare stage), as one paired number.
    cmp = run_dir / "probes" / "compare" / "strong_vs_weak.parquet"
    if cmp.is_file():
        write_parquet(read_parquet(cmp), out / PROBE_COMPARE_TABLE)
    ex = examples(run_dir, spec, spec.sizes.traces_shown)
    if ex:
        write_jsonl(out / EXAMPLES_FILE, ex)
