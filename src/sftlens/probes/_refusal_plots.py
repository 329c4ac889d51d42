"""Plots of the refusal table: pure functions of the long-format DataFrame.

Each figure is saved with the CSV it was drawn from (same stem), so a plot can be checked or
redrawn without the models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftlens.core import save_figure

DRIFT_PLOT = "refusal_drift"
LAYERS_PLOT = "refusal_layers"
DRIFT_METRICS = (
    "cosine_to_base",
    "cosine_to_reference",
    "auroc",
    "refusal_rate_harmful",
    "refusal_rate_harmless",
    "refusal_rate_harmful_ablated",
    "refusal_rate_harmless_added",
)
LAYER_METRICS = ("layer_cosine_to_base", "layer_auroc")


def drift_frame(table: Any) -> Any:
    """Checkpoint-level metrics: one row per (model, step, metric)."""
    df = table[table["metric"].isin(DRIFT_METRICS)]
    return df[["model", "step", "metric", "value"]].sort_values(["model", "metric", "step"])


def layer_frame(table: Any) -> Any:
    """Per-layer metrics at each checkpoint's selected position: (model, step, metric, layer,
    value)."""
    sel = table[table["metric"] == "auroc"][["model", "step", "position"]]
    df = table[table["metric"].isin(LAYER_METRICS)].merge(sel, on=["model", "step", "position"])
    return df[["model", "step", "metric", "layer", "value"]].sort_values(
        ["model", "metric", "step", "layer"]
    )


def plot_drift(table: Any, out_dir: str | os.PathLike) -> Path:
    """Cosine to base/reference, AUROC and refusal rates (plain, ablated, added) per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = drift_frame(table)
    panels = [
        (
            "direction",
            [
                m
                for m in ("cosine_to_base", "cosine_to_reference", "auroc")
                if m in set(df["metric"])
            ],
        ),
        ("refusal rate", [m for m in DRIFT_METRICS if m.startswith("refusal_rate")]),
    ]
    models = sorted(df["model"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), squeeze=False)
    for ax, (title, metrics) in zip(axes[0], panels, strict=True):
        for model in models:
            for metric in metrics:
                d = df[(df["model"] == model) & (df["metric"] == metric)]
                if len(d):
                    label = metric if len(models) == 1 else f"{model}: {metric}"
                    ax.plot(d["step"].astype(float), d["value"], marker="o", label=label)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.set_ylim(-0.05 if title == "refusal rate" else None, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, df, Path(out_dir) / DRIFT_PLOT)


def plot_layers(table: Any, out_dir: str | os.PathLike) -> Path:
    """Heatmaps (step x layer) of the cosine to the base direction and of the AUROC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = layer_frame(table)
    models = sorted(df["model"].unique())
    fig, axes = plt.subplots(
        len(models), len(LAYER_METRICS), figsize=(5.2 * len(LAYER_METRICS), 2.8 * len(models)),
        squeeze=False,
    )  # fmt: skip
    for r, model in enumerate(models):
        for c, metric in enumerate(LAYER_METRICS):
            ax = axes[r][c]
            grid = df[(df["model"] == model) & (df["metric"] == metric)].pivot_table(
                index="step", columns="layer", values="value"
            )
            im = ax.imshow(
                grid.values,
                aspect="auto",
                vmin=-1 if "cosine" in metric else 0,
                vmax=1,
                cmap="viridis",
            )
            ax.set_yticks(range(len(grid.index)), [str(s) for s in grid.index])
            ax.set_xticks(range(len(grid.columns)), [str(x) for x in grid.columns])
            ax.set_xlabel("layer")
            ax.set_ylabel("step")
            ax.set_title(f"{model}: {metric}", fontsize=9)
            fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return save_figure(fig, df, Path(out_dir) / LAYERS_PLOT)


def plot_refusal(table: Any, out_dir: str | os.PathLike) -> list[Path]:
    """Both refusal figures (and their CSVs) into ``out_dir``."""
    return [plot_drift(table, out_dir), plot_layers(table, out_dir)]


__all__ = ["drift_frame", "layer_frame", "plot_drift", "plot_layers", "plot_refusal"]
