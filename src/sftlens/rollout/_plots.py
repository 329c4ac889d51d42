"""Curves of a metric over checkpoints: a pure function of the long-format table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftlens.core import ConfigError, plot_lines
from sftlens.rollout._dip import detect_dip

__all__ = ["plot_curves"]


def plot_curves(
    table: Any,
    metric: str,
    out: str | os.PathLike,
    *,
    models: list[str] | None = None,
    tasks: list[str] | None = None,
    direction: str = "down",
) -> tuple[Path, Path]:
    """Plot `metric` against step, one panel per task, one line per model, CI bands, dips marked.

    Args:
        table: a `checkpoint_table` DataFrame.
        metric: which metric (``accuracy``, ``mean_length``, ``pass@4``, ...).
        out: the PNG path; the CSV it was drawn from is written beside it (same stem).
        models, tasks: restrict to these (default: all).
        direction: passed to `detect_dip` for the markers (``down`` marks dips, ``up`` peaks).

    Returns:
        (png path, csv path). The CSV holds the plotted rows plus ``is_dip`` / ``is_recovery``.
    """
    df = table[(table["metric"] == metric) & table["step"].notna()].copy()
    if models:
        df = df[df["model"].isin(models)]
    if tasks:
        df = df[df["task"].isin(tasks)]
    if df.empty:
        raise ConfigError(
            f"nothing to plot for metric {metric!r} (with steps); known metrics: "
            f"{', '.join(sorted(set(table['metric'])))}."
        )
    df = df.sort_values(["task", "model", "step"]).reset_index(drop=True)
    df["is_dip"] = False
    df["is_recovery"] = False
    for (model, task), g in df.groupby(["model", "task"]):
        d = detect_dip(g, metric, model=model, task=task, direction=direction)
        if d.found:
            df.loc[g.index[g["step"] == d.dip_step], "is_dip"] = True
            if d.recovered:
                df.loc[g.index[g["step"] == d.recovery_step], "is_recovery"] = True

    png = plot_lines(
        df,
        out,
        facet="task",
        ylabel=metric,
        marks={"is_dip": "v", "is_recovery": "^"},
    )
    return png, png.with_suffix(".csv")
