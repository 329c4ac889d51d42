"""Schedules as pure functions of the step: learning rate, checkpoint grid, fixed step budgets.

The learning rate is recomputed from the step at every optimizer step (nanoGPT style), so a
resumed run needs no scheduler object state beyond the step itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sftlens.core import ConfigError

if TYPE_CHECKING:
    from sftlens.train._config import TrainConfig

__all__ = ["checkpoint_grid", "fixed_budget_schedules", "lr_at"]


def lr_at(
    step: int,
    total_steps: int,
    base_lr: float,
    kind: str = "constant",
    warmup_frac: float = 0.0,
    min_lr_frac: float = 0.0,
) -> float:
    """The learning rate for optimizer step `step` (0-based) of `total_steps`.

    Linear warmup over the first ``ceil(warmup_frac * total_steps)`` steps, then ``constant``,
    ``cosine`` (to ``min_lr_frac * base_lr``) or ``linear`` decay (to the same floor) over the
    rest.
    """
    warmup = math.ceil(warmup_frac * total_steps)
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if kind == "constant":
        return base_lr
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = min_lr_frac * base_lr
    if kind == "cosine":
        return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if kind == "linear":
        return floor + (base_lr - floor) * (1.0 - progress)
    raise ConfigError(
        f"schedule.kind: {kind!r} is not allowed; use 'constant', 'cosine' or 'linear'."
    )


def checkpoint_grid(
    kind: str,
    total_steps: int,
    every: int | None = None,
    steps: list[int] | None = None,
    start: int = 10,
) -> list[int]:
    """The optimizer steps at which checkpoints are written, sorted; always has 0 and the last.

    Args:
        kind: ``log2`` (start, 2*start, 4*start, ... below `total_steps`), ``every`` (every
            `every` steps) or ``list`` (exactly `steps`).
        total_steps: the run's number of optimizer steps (the last checkpoint).
        every: the interval for ``every``.
        steps: the explicit steps for ``list`` (each in 1..total_steps).
        start: the first step for ``log2``.

    Returns:
        e.g. ``checkpoint_grid("log2", 100, start=10) == [0, 10, 20, 40, 80, 100]``.
    """
    if total_steps < 1:
        raise ConfigError(f"the run has {total_steps} optimizer steps; it needs at least 1.")
    grid = {0, total_steps}
    if kind == "log2":
        if start < 1:
            raise ConfigError(f"grid.start: {start} must be at least 1.")
        s = start
        while s < total_steps:
            grid.add(s)
            s *= 2
    elif kind == "every":
        if not every or every < 1:
            raise ConfigError("grid.every: set a positive interval for grid.kind=every.")
        grid.update(range(every, total_steps, every))
    elif kind == "list":
        bad = [s for s in steps or [] if not 0 <= s <= total_steps]
        if bad:
            raise ConfigError(
                f"grid.steps: {bad[0]} is outside the run's 0..{total_steps} optimizer steps; "
                "lower it or train longer."
            )
        grid.update(steps or [])
    else:
        raise ConfigError(f"grid.kind: {kind!r} is not allowed; use 'log2', 'every' or 'list'.")
    return sorted(grid)


def fixed_budget_schedules(
    cfg: TrainConfig,
    steps: int,
    epochs: tuple[int, ...] | list[int] = (1, 4, 16),
    world_size: int = 1,
) -> dict[str, TrainConfig]:
    """Configs that spend the same number of optimizer steps with different data repetition.

    The comparison of repeated exposure (a small subset seen for many epochs) against one pass
    over a large set: every config runs exactly `steps` optimizer steps with the same global
    batch, on a subset of ``steps * global_batch / k`` examples for ``k`` in `epochs`. Subsets
    are nested (the same seeded shuffle), so the 16-epoch subset is inside the 1-epoch one.

    Args:
        cfg: the recipe (model, data, lr, ...); its `max_steps`/`epochs`/`subset_size` are set.
        steps: the optimizer-step budget shared by every config.
        epochs: the repetition counts to compare.
        world_size: processes the runs will use (the global batch depends on it).

    Returns:
        ``{"ep01-n4096": cfg, "ep04-n1024": cfg, ...}``, each with its own
        ``out_dir = <cfg.out_dir>/<name>``.
    """
    global_batch = cfg.batch_size * cfg.grad_accum * world_size
    seen = steps * global_batch
    out: dict[str, TrainConfig] = {}
    for k in epochs:
        if k < 1:
            raise ConfigError(f"fixed budget: epochs {k} must be at least 1.")
        subset = math.ceil(seen / k)
        name = f"ep{k:02d}-n{subset}"
        out[name] = cfg.replace(
            max_steps=steps,
            epochs=None,
            subset_size=subset,
            out_dir=f"{cfg.out_dir}/{name}",
        )
    return out
