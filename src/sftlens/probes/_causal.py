"""The causal check with controls: the probe direction against random directions of its norm.

Steering along the dead-end direction changes generations; so would any vector of that size.
`causal_controls` therefore intervenes along the probe's direction *and* along random unit
directions with the same norm at the same layer (steering: add ``alpha * norm * unit`` to the
layer's output; ablation: project the direction out of the residual stream everywhere), and
reports per-problem changes against the unsteered model with bootstrap intervals over problems:

* ``backtracks_per_trace`` and ``backtrack_rate``: does the model still abandon branches;
* ``backtrack_precision``: does it abandon dead ones only (share of resolvable backtracks whose
  abandoned state is a real dead end);
* ``first_backtrack_tokens``: timing, tokens written before its first backtrack;
* ``accuracy`` and ``n_tokens``.

The summary ``probe_minus_random`` is the probe direction's change minus the mean change of the
random directions on the same problems: the effect that belongs to the direction, not its size.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sftlens.core import (
    DataError,
    load_causal_lm,
    load_tokenizer,
    percentile_ci,
    write_parquet,
    write_text,
)
from sftlens.probes._analyses import BACKTRACK_LABEL
from sftlens.probes._steer import _tag_counts, load_direction, steer_generate

CAUSAL_TABLE = "causal_controls.parquet"
METRICS = (
    "backtracks_per_trace",
    "backtrack_rate",
    "backtrack_precision",
    "first_backtrack_tokens",
    "accuracy",
    "n_tokens",
)


def random_directions(d_model: int, n: int, seed: int) -> list[Any]:
    """`n` random unit vectors ``[d_model]`` (Gaussian, normalised), seeded."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        v = torch.randn(d_model, generator=g)
        out.append(v / v.norm())
    return out


def _per_problem(problems: list[dict], gens: list[dict], tok: Any) -> dict[str, np.ndarray]:
    """Per-problem metric values ``{metric: [n_problems]}`` (NaN where undefined)."""
    from sftlens.tasks import countdown_behaviour_checks, get_task

    task = get_task("countdown")
    texts = [g["completion"] for g in gens]
    tags = _tag_counts(texts)
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for p, t, tg, g in zip(problems, texts, tags, gens, strict=True):
        nb = float(tg["counts"].get(BACKTRACK_LABEL, 0))
        out["backtracks_per_trace"].append(nb)
        out["backtrack_rate"].append(float(nb > 0))
        prec = countdown_behaviour_checks(t, p, tg["spans"]).get("backtrack_precision")
        out["backtrack_precision"].append(float("nan") if prec is None else float(prec))
        starts = [s["start"] for s in tg["spans"] if s["label"] == BACKTRACK_LABEL]
        first = float("nan")
        if starts:
            first = float(len(tok(t[: min(starts)], add_special_tokens=False)["input_ids"]))
        out["first_backtrack_tokens"].append(first)
        out["accuracy"].append(float(bool(task.score(p, t).get("correct"))))
        out["n_tokens"].append(float(g["n_tokens"]))
    return {m: np.array(v, dtype=float) for m, v in out.items()}


def _boot_mean(v: np.ndarray, idx: np.ndarray, ci: float) -> tuple[float, float, float, int]:
    """Mean of the defined values, its bootstrap interval (problems resampled by `idx`
    ``[n_boot, n]``) and how many values were defined."""
    ok = ~np.isnan(v)
    if not ok.any():
        return float("nan"), float("nan"), float("nan"), 0
    vv = np.where(ok, v, 0.0)[idx]
    cnt = ok[idx].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = np.where(cnt > 0, vv.sum(1) / np.maximum(cnt, 1), np.nan)
    lo, hi = percentile_ci(draws, ci)
    return float(v[ok].mean()), lo, hi, int(ok.sum())


def causal_controls(
    checkpoint: str | os.PathLike,
    directions: str | os.PathLike,
    layer: int,
    alphas: Sequence[float] = (-2.0, 2.0),
    n_random: int = 4,
    ablate: bool = True,
    problems: list[dict] | None = None,
    n_problems: int = 50,
    seed: int = 0,
    knobs: Mapping[str, Any] | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    device: str = "cpu",
    n_boot: int = 1000,
    ci: float = 0.95,
    hook_template: str = "blocks.{layer}.hook_resid_post",
    out: str | os.PathLike | None = None,
) -> Any:
    """Steer and ablate along the dead-end direction and along random directions of its norm.

    Args:
        checkpoint: the checkpoint to intervene on (the one whose directions were fitted).
        directions: its ``directions.safetensors`` (or the folder holding it).
        layer: the decoder layer to steer (see `best_layer`).
        alphas: steering strengths in units of the class-mean separation (0 is the baseline,
            always run).
        n_random: random unit directions, each scaled like the probe's.
        ablate: also project each direction out of the residual stream everywhere.
        problems: Countdown problems (default: `n_problems` eval problems from `seed`).
        n_problems: problems when generated.
        seed: problems, random directions and bootstrap.
        knobs: Countdown generation knobs for generated problems (those the model trained on).
        max_new_tokens: generation budget.
        batch_size: prompts per `generate` call.
        device: torch device.
        n_boot: bootstrap resamples over problems.
        ci: interval level.
        hook_template: where the direction was read (a decoder layer's output).
        out: write the table here (parquet + CSV) when given.

    Returns:
        Long table ``direction`` (``none``, ``probe``, ``random0``.., and the summaries
        ``random_mean`` and ``probe_minus_random``), ``intervention`` (``none``, ``steer``,
        ``ablate``), ``alpha``, ``metric``, ``value, lo, hi, n`` (the mean over problems), and
        ``delta, delta_lo, delta_hi`` (the paired change against no intervention; for
        ``probe_minus_random`` the probe's change minus the random directions' mean change).
    """
    import pandas as pd

    from sftlens.probes._refusal import directional_ablation
    from sftlens.tasks import get_task

    if n_random < 0:
        raise DataError(f"n_random={n_random}: use 0 or more random directions.")
    if problems is None:
        problems = get_task("countdown").generate(
            n_problems, seed, split="eval", **dict(knobs or {})
        )
    unit, norm = load_direction(directions, hook_template.format(layer=layer))
    model = load_causal_lm(checkpoint, device=device, dtype="float32")
    tok = load_tokenizer(checkpoint)
    dirs = {"probe": unit}
    for i, v in enumerate(random_directions(unit.shape[0], n_random, seed)):
        dirs[f"random{i}"] = v
    runs: list[tuple[str, str, float | None, Any, Any]] = [("none", "none", 0.0, None, None)]
    for name, u in dirs.items():
        runs += [(name, "steer", float(a), u * (a * norm), None) for a in alphas if a != 0]
        if ablate:
            runs.append((name, "ablate", None, None, directional_ablation(model, u)))
    prompts = [p["prompt"] for p in problems]
    per: dict[tuple, dict[str, np.ndarray]] = {}
    for name, kind, alpha, vec, ctx in runs:
        gens = steer_generate(
            model, tok, prompts, vec, layer, max_new_tokens, batch_size,
            intervention=ctx if ctx is not None else contextlib.nullcontext(),
        )  # fmt: skip
        per[(name, kind, alpha)] = _per_problem(problems, gens, tok)
    idx = np.random.default_rng(seed).integers(0, len(problems), size=(n_boot, len(problems)))
    base = per[("none", "none", 0.0)]
    rows = []

    def add(name: str, kind: str, alpha: Any, m: str, v: np.ndarray, d: np.ndarray | None) -> None:
        value, lo, hi, n = _boot_mean(v, idx, ci)
        row = {"direction": name, "intervention": kind, "alpha": alpha, "metric": m,
               "value": value, "lo": lo, "hi": hi, "n": n}  # fmt: skip
        if d is not None:
            row["delta"], row["delta_lo"], row["delta_hi"], _ = _boot_mean(d, idx, ci)
        rows.append(row)

    for (name, kind, alpha), vals in per.items():
        for m in METRICS:
            add(name, kind, alpha, m, vals[m], None if name == "none" else vals[m] - base[m])
    # Summaries: the random directions' mean change, and the probe's change beyond it.
    for kind, alpha in {(k, a) for (n, k, a) in per if n == "probe"}:
        rand = [per[(f"random{i}", kind, alpha)] for i in range(n_random)]
        if not rand:
            continue
        for m in METRICS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a problem no run defines
                r_delta = np.nanmean(np.vstack([r[m] - base[m] for r in rand]), 0)
                r_val = np.nanmean(np.vstack([r[m] for r in rand]), 0)
            add("random_mean", kind, alpha, m, r_val, r_delta)
            p_delta = per[("probe", kind, alpha)][m] - base[m]
            add("probe_minus_random", kind, alpha, m, p_delta - r_delta, p_delta - r_delta)
    table = pd.DataFrame(rows).assign(
        layer=layer, checkpoint=str(checkpoint), direction_norm=norm, n_random=n_random
    )
    if out is not None:
        write_parquet(table, out)
        write_text(Path(out).with_suffix(".csv"), table.to_csv(index=False))
    return table
