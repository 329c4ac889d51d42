"""Run a spec end to end: resolve it, save it into the run folder, run its stage graph."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from sftlens.core import ConfigError, DataError, SftlensError, fingerprint, read_yaml
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
    # Every input file is read in its format, and every checkpoint reference resolved, before
    # any stage runs (a bad line fails now, not hours later); a file missing here is a note on a
    # dry run, an error otherwise.
    missing = check_inputs(spec)
    if dry_run:
        out.write(f"plan for {spec.name} (scale {spec.scale}) in {run_dir}:\n")
        out.write(format_plan(plan(run_dir, stages)) + "\n")
        for where, path in missing:
            out.write(f"note: {where} = {path} does not exist here; the run needs it.\n")
        return run_dir
    if missing:
        where, path = missing[0]
        raise DataError(f"{where} = {path}: file not found; check the path in the spec.")
    _quiet_libraries()
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(saved)
    run_stages(run_dir, stages, force=force or (), meta=_meta(spec), spec=spec, stream=out)
    return run_dir / REPORT_DIR / INDEX_HTML


def check_inputs(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """Read every local file the spec names in its format, and resolve every real base and
    external checkpoint series (nothing downloaded); return the (key, path) of missing files.

    Raises:
        DataError: a file its format cannot read (naming the spec key, the file and the line),
            or a checkpoint reference that resolves to nothing.
    """
    from sftlens.tasks import load_instructions, load_problem_file, load_sft_records

    checks = [(f"data.{d.name}.path", d.path, lambda p: load_sft_records(p))
              for d in spec.data if d.path]  # fmt: skip
    for e in spec.evals:
        if e.path:
            checks.append((f"evals.{e.name}.path", e.path,
                           lambda p, e=e: load_problem_file(p, e.task, e.fields, spec.seed)))  # fmt: skip
    a = spec.analysis
    for kind, path in (("harmful", a.refusal_harmful), ("harmless", a.refusal_harmless)):
        if path and a.refusal:
            checks.append((f"analysis.refusal_{kind}", path,
                           lambda p, kind=kind: load_instructions(p, kind)))  # fmt: skip
    missing = []
    for where, path, load in checks:
        if not Path(path).is_file():
            missing.append((where, path))
            continue
        try:
            load(path)
        except SftlensError as e:
            raise DataError(f"{where}: {e}") from None
    from sftlens.core import resolve_series

    # Real bases and external checkpoint series through the resolver (nothing downloaded).
    for m in spec.models:
        if not m.is_toy:
            resolve_series(m.base, fetch=False)
    for arm in spec.arms:
        if arm.external:
            resolve_series(arm.checkpoints, fetch=False)
    _check_eval_sizes(spec)
    return missing


def _check_eval_sizes(spec: ExperimentSpec) -> None:
    """Every generated eval set can give the scale's ``eval_problems`` distinct problems (a
    finite pool such as the held-out harmful prompts would otherwise fail at sampling time)."""
    from sftlens.experiments._stage_helpers import stage_seed
    from sftlens.tasks import get_task

    for i, e in enumerate(spec.evals):
        if e.path:
            continue
        n = e.n_problems(spec.sizes.eval_problems)
        try:
            # The rollout stage's seed for this eval set (`_stages._rollout`).
            get_task(e.task).generate(n, stage_seed(spec, 100 + i), split=e.split, **e.knobs)
        except SftlensError as err:
            raise ConfigError(
                f"evals.{e.name}: {err} Lower scales.{spec.scale}.eval_problems (now "
                f"{spec.sizes.eval_problems}) or set evals.{e.name}.max_problems."
            ) from None


def _quiet_libraries() -> None:
    """Silence per-load progress bars of transformers; the runner shows progress itself."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _nested(overrides: list[str] | None) -> dict:
    from sftlens.core import parse_overrides

    return parse_overrides(overrides or [])


def quickstart(
    run_dir: str | Path = QUICKSTART_DIR,
    scale: str = QUICKSTART_SCALE,
    stream: TextIO | None = None,
    pretrain: bool = False,
    dry_run: bool = False,
) -> Path:
    """The toy world end to end (``countdown_lab`` at tiny scale) into ``runs/quickstart/``.

    Args:
        run_dir: the run folder.
        scale: size preset.
        stream: where progress goes (stderr by default).
        pretrain: pretrain the toy bases even where shipped ones match the recipe.

    Returns:
        The report's ``index.html`` (the run folder on ``dry_run``: the plan is printed).
    """
    overrides = ["shipped_bases=false"] if pretrain else []
    return run_experiment(
        QUICKSTART_SPEC, run_dir, scale=scale, overrides=overrides, stream=stream, dry_run=dry_run
    )
