"""Dip-and-recovery detection on a metric's curve over checkpoints.

The rule, with the base point B (the earliest step, or ``base_step``) and CIs from the table:

- a point P after B is *significantly below* the base when ``P.ci_high < B.ci_low`` (the two
  intervals do not overlap);
- the **dip** is the lowest significantly-below point (its step, value and depth
  ``B.value - P.value``); without any such point there is no dip, however much the point
  estimates wobble;
- the **recovery** is the first step after the dip whose point is back within reach of the
  base: ``P.value >= B.ci_low`` and ``P.ci_high >= B.value`` (its CI covers the base value or
  lies above it); ``exceeded_step`` is the first step after the dip that is significantly
  *above* the base (``P.ci_low > B.ci_high``).

Rows without CIs (NaN) use the point value as both bounds, so any drop counts. With
``direction="up"`` (e.g. non-termination, where the harmful excursion is a rise) the curve is
mirrored and the same rule finds a peak.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sftlens.core import ConfigError

__all__ = ["Dip", "detect_dip", "detect_dips"]


@dataclasses.dataclass(frozen=True)
class Dip:
    """What `detect_dip` found on one curve (steps and values in the metric's own units)."""

    metric: str
    model: str | None
    task: str | None
    found: bool
    base_step: int | None
    base_value: float
    dip_step: int | None = None
    dip_value: float | None = None
    depth: float | None = None
    recovered: bool = False
    recovery_step: int | None = None
    recovery_value: float | None = None
    exceeded_step: int | None = None
    direction: str = "down"

    def describe(self) -> str:
        """One human line."""
        what = f"{self.metric} ({self.model or '-'}, {self.task or '-'})"
        kind, side = ("dip", "below") if self.direction == "down" else ("peak", "above")
        if not self.found:
            return (
                f"{what}: no significant {kind} {side} the base {self.base_value:.4g} "
                f"at step {self.base_step}."
            )
        line = (
            f"{what}: {kind} at step {self.dip_step} to {self.dip_value:.4g} (depth "
            f"{self.depth:.4g} {side} the base {self.base_value:.4g} at step {self.base_step})"
        )
        if self.recovered:
            line += f"; recovered at step {self.recovery_step} ({self.recovery_value:.4g})"
        else:
            line += "; not recovered"
        if self.exceeded_step is not None:
            beyond = "above" if self.direction == "down" else "below"
            line += f"; significantly {beyond} the base from step {self.exceeded_step}"
        return line + "."

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _curve(table: Any, metric: str, model: str | None, task: str | None) -> tuple[Any, str, str]:
    df = table
    if "metric" in df.columns:
        if metric not in set(df["metric"]):
            raise ConfigError(
                f"metric {metric!r} is not in the table; known: {', '.join(sorted(set(df['metric'])))}."
            )
        df = df[df["metric"] == metric]
    for col, want in (("model", model), ("task", task)):
        if col not in df.columns:
            continue
        have = sorted(set(df[col]))
        if want is None:
            if len(have) > 1:
                raise ConfigError(f"the table has several {col}s ({', '.join(have)}); pick one.")
            want = have[0]
        elif want not in have:
            raise ConfigError(f"{col} {want!r} is not in the table; known: {', '.join(have)}.")
        df = df[df[col] == want]
        if col == "model":
            model = want
        else:
            task = want
    df = df[df["step"].notna()].sort_values("step", kind="stable")
    if df["step"].duplicated().any():
        if "checkpoint" not in df.columns or df["checkpoint"].duplicated().any():
            raise ConfigError(
                "the curve has two points at one step; filter the table to one model."
            )
        # A run's final model saved at its last checkpoint's step: one point per step.
        df = df.drop_duplicates("step", keep="first")
    return df, model, task


def detect_dip(
    table: Any,
    metric: str = "accuracy",
    *,
    model: str | None = None,
    task: str | None = None,
    base_step: int | None = None,
    direction: str = "down",
) -> Dip:
    """Find the dip and recovery on one curve of a long-format table (see the module rule).

    Args:
        table: a `checkpoint_table` DataFrame, or any frame with ``step``, ``value`` and
            optionally ``ci_low``, ``ci_high``, ``metric``, ``model``, ``task``.
        metric: the metric whose curve to read.
        model, task: which curve (needed when the table holds several).
        base_step: the reference point (default: the earliest step).
        direction: ``down`` for a dip, ``up`` for a peak.
    """
    if direction not in ("down", "up"):
        raise ConfigError(f"direction {direction!r}: use 'down' or 'up'.")
    df, model, task = _curve(table, metric, model, task)
    if len(df) == 0:
        raise ConfigError(f"no points with a step for metric {metric!r}.")
    sign = 1.0 if direction == "down" else -1.0
    pts = []
    for r in df.itertuples(index=False):
        v = float(r.value)
        lo = float(getattr(r, "ci_low", math.nan))
        hi = float(getattr(r, "ci_high", math.nan))
        lo, hi = (v if math.isnan(lo) else lo), (v if math.isnan(hi) else hi)
        # Mirror for direction="up": the same "below" logic then finds peaks.
        lo, hi = (sign * lo, sign * hi) if sign > 0 else (sign * hi, sign * lo)
        pts.append((int(r.step), sign * v, lo, hi))
    steps = [p[0] for p in pts]
    if base_step is not None and base_step not in steps:
        raise ConfigError(f"base_step {base_step} is not a step of the curve ({steps}).")
    bi = steps.index(base_step) if base_step is not None else 0
    b_step, b_val, b_lo, b_hi = pts[bi]
    out = {"metric": metric, "model": model, "task": task, "direction": direction}
    below = [p for p in pts[bi + 1 :] if p[3] < b_lo]
    if not below:
        return Dip(found=False, base_step=b_step, base_value=sign * b_val, **out)
    dip = min(below, key=lambda p: (p[1], p[0]))
    after = [p for p in pts if p[0] > dip[0]]
    rec = next((p for p in after if p[1] >= b_lo and p[3] >= b_val), None)
    exc = next((p for p in after if p[2] > b_hi), None)
    return Dip(
        found=True,
        base_step=b_step,
        base_value=sign * b_val,
        dip_step=dip[0],
        dip_value=sign * dip[1],
        depth=b_val - dip[1],
        recovered=rec is not None,
        recovery_step=rec[0] if rec else None,
        recovery_value=sign * rec[1] if rec else None,
        exceeded_step=exc[0] if exc else None,
        **out,
    )


def detect_dips(table: Any, metric: str = "accuracy", direction: str = "down") -> Any:
    """`detect_dip` for every (model, task) curve of `metric`; one row per curve (DataFrame).

    Reads a `sftlens table` table or a run's ``tables/evals.parquet`` (whose eval set column,
    ``eval``, plays the part of ``task``).
    """
    import pandas as pd

    if "task" not in table.columns and "eval" in table.columns:
        table = table.rename(columns={"eval": "task"})
    missing = [c for c in ("model", "task", "step", "metric", "value") if c not in table.columns]
    if missing:
        raise ConfigError(
            f"the table has no {', '.join(missing)} column; give a table from `sftlens table` "
            "or a run's tables/evals.parquet."
        )
    df = table[table["metric"] == metric]
    if df.empty:
        raise ConfigError(
            f"metric {metric!r} is not in the table; known: {', '.join(sorted(set(table['metric'])))}."
        )
    rows = []
    for (model, task), g in df.groupby(["model", "task"], sort=True):
        if g["step"].isna().all():  # a hub model without a step: no curve to read
            continue
        d = detect_dip(df, metric, model=model, task=task, direction=direction)
        rows.append({**d.to_dict(), "summary": d.describe()})
    if not rows:
        raise ConfigError(
            f"metric {metric!r}: no checkpoint in the table has a step, so there is no curve; "
            "resolve the models with `sftlens checkpoints` to see their steps."
        )
    return pd.DataFrame(rows)
