"""Curves of a metric over checkpoints: a pure function of the long-format table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftlens.core import ConfigError, atomic_path
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

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

    task_names = sorted(df["task"].unique())
    model_names = sorted(df["model"].unique())
    palette = dict(zip(model_names, sns.color_palette("colorblind", len(model_names)), strict=True))
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(
        1, len(task_names), figsize=(4.5 * len(task_names), 3.4), squeeze=False, sharey=False
    )
    for ax, task in zip(axes[0], task_names, strict=True):
        for model in model_names:
            g = df[(df["task"] == task) & (df["model"] == model)]
            if g.empty:
                continue
            color = palette[model]
            ax.plot(g["step"], g["value"], marker="o", ms=3, color=color, label=model)
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=color, alpha=0.2, lw=0)
            dip = g[g["is_dip"]]
            ax.scatter(dip["step"], dip["value"], marker="v", s=80, color=color, zorder=5)
            rec = g[g["is_recovery"]]
            ax.scatter(rec["step"], rec["value"], marker="^", s=80, color=color, zorder=5)
        ax.set_title(task)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
    axes[0][-1].legend(title="model (v dip, ^ recovery)", fontsize=8, title_fontsize=8)
    fig.tight_layout()
    png = Path(out)
    csv = png.with_suffix(".csv")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False)
    return png, csv
