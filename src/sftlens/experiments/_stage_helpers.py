"""What every stage function needs to know about its arm: its name, what it reads, its seeds."""

from __future__ import annotations

from sftlens.experiments._runner import StageContext
from sftlens.experiments._spec import ExperimentSpec

MODELS_DIR = "models"


def stage_seed(spec: ExperimentSpec, offset: int) -> int:
    """The seed of one use (data, training, probes, ...) in a run: the spec's seed, offset."""
    return spec.seed * 1000 + offset


def stage_arm(ctx: StageContext) -> str:
    """The arm a per-arm stage (``<kind>.<arm>``) works on."""
    return ctx.stage.name.split(".", 1)[1]


def stage_series(ctx: StageContext) -> str:
    """What an arm's analyses read: its trained grid, or the external series it names."""
    return ctx.params.get("source") or str(ctx.run_dir / MODELS_DIR / stage_arm(ctx))
