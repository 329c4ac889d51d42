"""Experiments: typed specs, a stage runner with fingerprints and resume, the quickstart and the
report.

Example::

    from sftlens.experiments import run_experiment
    report = run_experiment("countdown_lab", "runs/lab", scale="tiny")
"""

from sftlens.core import plot_lines
from sftlens.experiments._experiment import quickstart, run_experiment
from sftlens.experiments._report import write_report
from sftlens.experiments._runner import (
    Stage,
    StageContext,
    StageUnavailable,
    format_plan,
    plan,
    run_stages,
)
from sftlens.experiments._spec import (
    ArmSpec,
    DataSpec,
    EvalSpec,
    ExperimentSpec,
    ModelSpec,
    Sizes,
    load_spec,
    shipped_specs,
)
from sftlens.experiments._stages import build_stages

__all__ = [
    "ArmSpec",
    "DataSpec",
    "EvalSpec",
    "ExperimentSpec",
    "ModelSpec",
    "Sizes",
    "Stage",
    "StageContext",
    "StageUnavailable",
    "build_stages",
    "format_plan",
    "load_spec",
    "plan",
    "plot_lines",
    "quickstart",
    "run_experiment",
    "run_stages",
    "shipped_specs",
    "write_report",
]
