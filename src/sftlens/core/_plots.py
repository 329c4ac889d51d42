"""Figures every stage draws the same way: curves over checkpoints with interval bands, and the
one way a figure is saved (PNG beside the CSV it was drawn from, both written atomically).

Plots are pure functions of a tidy DataFrame; matplotlib is imported only when one is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sftlens.core._io import atomic_path

__all__ = ["plot_lines", "save_figure"]


def save_figure(fig: Any, data: Any, out: str | os.PathLike, dpi: int = 110) -> Path:
    """Write `fig` as ``<out>.png`` and `data` (the rows it shows) as ``<out>.csv``, each to a
    temporary sibling renamed when complete, and close the figure.

    Returns:
        The PNG path.
    """
    import matplotlib.pyplot as plt

    png = Path(out).with_suffix(".png")
    with atomic_path(png.with_suffix(".csv")) as tmp:
        data.to_csv(tmp, index=False)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return png


def plot_lines(
    df: Any,
    path: str | os.PathLike,
    *,
    x: str = "step",
    y: str = "value",
    hue: str = "model",
    facet: str | None = None,
    title: str = "",
    ylabel: str | None = None,
    band: bool = True,
    marks: Mapping[str, str] | None = None,
) -> Path:
    """Lines of `y` over `x`, one per `hue`, one panel per `facet`, with ``ci_low``/``ci_high``
    bands; saved as PNG with its CSV (`save_figure`).

    Args:
        df: tidy rows with columns `x`, `y`, `hue` (and `facet`, ``ci_low``/``ci_high``).
        path: the PNG path; the CSV is written beside it with the same stem.
        band: draw the interval band where the rows have one.
        marks: boolean column -> marker: rows where the column is true are marked on their
            line (e.g. ``{"is_dip": "v", "is_recovery": "^"}``).

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = df.sort_values([c for c in (facet, hue, x) if c]).reset_index(drop=True)
    panels = sorted(df[facet].unique(), key=str) if facet else [None]
    keys = sorted(df[hue].unique(), key=str)
    palette = dict(zip(keys, sns.color_palette("colorblind", len(keys)), strict=True))
    ncol = min(len(panels), 3)
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        sub = df if panel is None else df[df[facet] == panel]
        for key, g in sub.groupby(hue, sort=True):
            cols = [c for c in ("ci_low", "ci_high", *(marks or {})) if c in g]
            agg = {y: "mean", **{c: ("max" if c in (marks or {}) else "mean") for c in cols}}
            g = g.groupby(x, as_index=False).agg(agg)
            color = palette[key]
            ax.plot(g[x], g[y], marker="o", ms=3, color=color, label=str(key))
            if band and {"ci_low", "ci_high"} <= set(g) and g["ci_low"].notna().any():
                ax.fill_between(g[x], g["ci_low"], g["ci_high"], alpha=0.2, lw=0, color=color)
            for col, marker in (marks or {}).items():
                if col in g:
                    hit = g[g[col].astype(bool)]
                    ax.scatter(hit[x], hit[y], marker=marker, s=80, color=color, zorder=5)
        if x == "step" and (sub[x] > 0).any():
            # Log-spaced checkpoint grids: a symlog axis keeps step 0, ticks at the real steps.
            ax.set_xscale("symlog", linthresh=max(1.0, float(sub[sub[x] > 0][x].min())))
            ticks = sorted(sub[x].unique())
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(int(t)) for t in ticks], fontsize=7)
        ax.set_title(str(panel) if panel is not None else title, fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(y if ylabel is None else ylabel)
        ax.grid(alpha=0.3)
        legend = " ".join(f"{m} {c.removeprefix('is_')}" for c, m in (marks or {}).items())
        ax.legend(fontsize=7, title=legend or None, title_fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title and facet:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, df, path, dpi=90)
