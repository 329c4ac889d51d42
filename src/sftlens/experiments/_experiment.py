"""Run a spec end to end: resolve it, save it into the run folder, run its stage graph."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from sftlens.core import ConfigError, fingerprint, read_yaml
from sftlens.experiments._report import INDEX_HTML, REPORT_DIR
from sftlens.experiments._runner import format_plan, plan, run_stages
from sftlens.experiments._spec import SPEC_FILE, ExperimentSpec, load_spec
from sftlens.experiments._stages import build_stages

DEFAULT_RUNS_DIR = "runs"
QUICKSTART_SPEC = "countdown_lab"
QUICKSTART_SCALE = "tiny"
QUICKSTART_DIR = "runs/quickstart"


def _meta(spec: ExperimentSpec) -> dict:
    return {
        "name": spec.name,
        "description": spec.description,
        "seed": spec.seed,
        "scale": spec.scale,
        "spec_fingerprint": fingerprint(spec.to_dict()),
        "eval_labels": {e.name: e.label or e.name for e in spec.evals},
        "eval_order": [e.name for e in spec.evals],  # JSON keys are sorted; keep spec order
    }


def run_experiment(
    spec: ExperimentSpec | str | Path,
    run_dir: str | Path | None = None,
    *,
    scale: str | None = None,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    dry_run: bool = False,
    stream: TextIO | None = None,
) -> Path:
    """Run (or plan) an experiment and return the report's path (or the run folder on dry-run).

    Args:
        spec: a loaded spec, a YAML path, or a shipped spec name (``countdown_lab``).
        run_dir: the run folder (default ``runs/<spec name>``).
        scale: size preset (``micro``, ``tiny``, ``small``, ``full``).
        overrides: ``key=value`` spec overrides.
        force: stage names or prefixes to rerun (``sft``, ``report``).
        dry_run: print the plan (what runs, what is skipped and why) and run nothing.
        stream: where the plan and progress go (stderr by default).

    Raises:
        ConfigError: invalid spec; a run folder holding another experiment.
        StageUnavailable: a stage that must run needs a function that is not installed.
    """
    out = stream if stream is not None else sys.stderr
    if not isinstance(spec, ExperimentSpec):
        spec = load_spec(spec, scale=scale, overrides=overrides)
    elif scale is not None or overrides:
        spec = ExperimentSpec.from_dict(
            {**spec.to_dict(), **({"scale": scale} if scale else {})}
        ).replace(**_nested(overrides))
    run_dir = Path(run_dir) if run_dir is not None else Path(DEFAULT_RUNS_DIR) / spec.name
    saved = run_dir / SPEC_FILE
    if saved.is_file():
        old = read_yaml(saved) or {}
        if isinstance(old, dict) and old.get("name") not in (None, spec.name):
            raise ConfigError(
                f"{run_dir} holds experiment {old.get('name')!r}, not {spec.name!r}; "
                "pick another run folder (--out)."
            )
    stages = build_stages(spec)
    # Every local file and checkpoint reference is read now, so a malformed line or a missing
    # model fails in seconds (and in the dry run), not after hours of training.
    check_inputs(spec)
    if dry_run:
        out.write(f"plan for {spec.name} (scale {spec.scale}) in {run_dir}:\n")
        out.write(format_plan(plan(run_dir, stages)) + "\n")
        for where, path in _local_inputs(spec):
            if not Path(path).is_file():
                out.write(f"note: {where} = {path} does not exist here; the run needs it.\n")
        return run_dir
    _quiet_libraries()
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(saved)
    run_stages(run_dir, stages, force=force or (), meta=_meta(spec), spec=spec, stream=out)
    return run_dir / REPORT_DIR / INDEX_HTML


def _local_inputs(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """(spec key, path) of every local file the spec reads."""
    out = [(f"data.{d.name}.path", d.path) for d in spec.data if d.path]
    return out + [(f"evals.{e.name}.path", e.path) for e in spec.evals if e.path]


def check_inputs(spec: ExperimentSpec) -> None:
    """Read every local input the spec names in the format its stage will read it.

    SFT files through `load_sft_records`, math eval files through `load_math_problems`,
    instruction files through `load_instructions`, other eval files as JSONL with ``prompt``;
    real base models and external checkpoint series through the resolver (nothing downloaded).
    A missing file is left to the stage that reads it (the dry run notes it).

    Raises:
        DataError: a malformed file (naming the file, line or field) or a missing model.
    """
    from sftlens.core import read_jsonl, resolve_series
    from sftlens.tasks import load_instructions, load_math_problems, load_sft_records

    for d in spec.data:
        if d.path and Path(d.path).is_file():
            load_sft_records(d.path)
    for e in spec.evals:
        if not (e.path and Path(e.path).is_file()):
            continue
        if e.task == "math":
            load_math_problems(e.path)
        elif e.task in ("harmful", "harmless"):
            load_instructions(e.path, kind=e.task)
        else:
            list(read_jsonl(e.path, required=("prompt",)))
    for m in spec.models:
        if not m.is_toy:
            resolve_series(m.base, fetch=False)
    for a in spec.arms:
        if a.external:
            resolve_series(a.checkpoints, fetch=False)


def _quiet_libraries() -> None:
    """Silence per-load progress bars of transformers; the runner shows progress itself."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def _nested(overrides: list[str] | None) -> dict:
    from sftlens.core import parse_overrides

    return parse_overrides(overrides or [])


def quickstart(
    run_dir: str | Path = QUICKSTART_DIR,
    scale: str = QUICKSTART_SCALE,
    stream: TextIO | None = None,
) -> Path:
    """The toy world end to end (``countdown_lab`` at tiny scale) into ``runs/quickstart/``.

    Returns:
        The report's ``index.html``.
    """
    return run_experiment(QUICKSTART_SPEC, run_dir, scale=scale, stream=stream)
