"""Plots of the probe tables: pure functions of a tidy DataFrame, saved as PNG with its CSV."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftlens.core import DataError, save_figure

PROBE_ORDER = ("logreg", "diffmean", "surface", "shuffled")


def plot_probe_auroc(
    table: Any,
    out: str | os.PathLike,
    position_kind: str = "step_end",
    subset: str | None = "multi_number",
) -> Path:
    """Probe AUROC by layer, with the shuffled and surface controls; one panel per
    checkpoint (rows) and model (columns), so strong and weak sit side by side.

    Args:
        table: the dead-end (or any `fit_probes`) table with ``model`` and ``step`` columns.
        out: output path; ``.png`` and ``.csv`` (the plotted rows) are written.
        position_kind: which position kind to draw (when the table has several).
        subset: which row subset to draw (when the table has several).

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    t = table[table["metric"] == "auroc"].copy()
    if "position_kind" in t and position_kind in set(t["position_kind"]):
        t = t[t["position_kind"] == position_kind]
    if subset and "subset" in t and subset in set(t["subset"]):
        t = t[t["subset"] == subset]
    if t.empty:
        raise DataError("no AUROC rows to plot; check the table and the position kind.")
    for col, default in (("model", "model"), ("step", 0)):
        if col not in t:
            t[col] = default
    t["step"] = t["step"].fillna(-1).astype(int)
    hue_order = [p for p in PROBE_ORDER if p in set(t["probe"])]
    g = sns.relplot(
        data=t,
        x="layer",
        y="value",
        hue="probe",
        hue_order=hue_order,
        style="probe",
        markers=True,
        dashes=False,
        col="model",
        row="step",
        kind="line",
        height=2.6,
        aspect=1.3,
        facet_kws={"sharey": True},
    )
    g.set(ylim=(0.3, 1.02))
    for ax in g.axes.flat:
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    g.set_axis_labels("layer", "AUROC (grouped CV)")
    g.figure.suptitle(f"dead-end probe at {position_kind}", y=1.02)
    cols = ["model", "step", "layer", "hook", "probe", "value", "std"]
    return save_figure(g.figure, t[[c for c in cols if c in t]], out, dpi=120)


def plot_appropriateness(table: Any, out: str | os.PathLike, metrics: tuple = ()) -> Path:
    """Behaviour counts, length and appropriateness by checkpoint step, strong vs weak."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    default = (
        "count_backtracking",
        "backtrack_precision",
        "count_verification",
        "verification_correct_rate",
        "n_tokens",
        "accuracy",
    )
    want = list(metrics or default)
    t = table[table["metric"].isin(want)]
    if t.empty:
        raise DataError(f"none of the metrics {want} in the table.")
    g = sns.relplot(
        data=t,
        x="step",
        y="value",
        hue="model",
        col="metric",
        col_wrap=3,
        col_order=[m for m in want if m in set(t["metric"])],
        kind="line",
        marker="o",
        height=2.4,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    return save_figure(g.figure, t, out, dpi=120)


def plot_drift(table: Any, out: str | os.PathLike) -> Path:
    """Linear CKA to the base by layer, one line per checkpoint step, a panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    if table.empty:
        raise DataError("empty drift table; nothing to plot.")
    g = sns.relplot(
        data=table, x="layer", y="value", hue="step", col="model", kind="line", marker="o",
        height=2.6, aspect=1.3,
    )  # fmt: skip
    g.set_axis_labels("layer", "linear CKA to base")
    return save_figure(g.figure, table, out, dpi=120)
