"""Verbs `sftlens run`, `sftlens quickstart`, `sftlens report`."""

from __future__ import annotations

from pathlib import Path

import typer


def run_cmd(
    spec: str = typer.Argument(..., help="spec YAML path, or a shipped spec name (listed above)"),
    scale: str = typer.Option(None, "--scale", help="size preset: micro | tiny | small | full"),
    out: Path = typer.Option(None, "--out", help="run folder (default runs/<spec name>)"),
    set_: list[str] = typer.Option(
        None, "--set", help="spec override key=value (repeatable), e.g. --set seed=3"
    ),
    force: list[str] = typer.Option(
        None, "--force", help="rerun this stage or prefix (repeatable), e.g. --force report"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan; run nothing"),
) -> None:
    """Run an experiment spec: data, training, sampling, tagging, probes, report.

    Stages whose outputs exist and whose inputs and config are unchanged are skipped, so
    rerunning after a crash or Ctrl-C resumes where it stopped. Shipped specs:
    countdown_lab, cmp_data, cmp_exposure, cmp_schedule, qwen3_math (GPU).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens run countdown_lab --scale tiny --dry-run

      sftlens run cmp_data --scale small --out runs/data-ablation --set seed=1
    """
    from sftlens.experiments._experiment import run_experiment

    res = run_experiment(
        spec, out, scale=scale, overrides=set_ or [], force=force or [], dry_run=dry_run
    )
    if not dry_run:
        typer.echo(f"report: {res}")


def quickstart_cmd(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="run folder"),
    scale: str = typer.Option("tiny", "--scale", help="size preset: micro | tiny | small"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan; run nothing"),
) -> None:
    """The toy world end to end on CPU (countdown_lab at tiny scale), then the report path.

    Pretrains a weak and a strong toy base, SFTs both on Countdown chain-of-thought with a
    log-spaced checkpoint grid, samples every checkpoint in-domain, on harder Countdown, on
    a cross-domain task and on harmful prompts, tags behaviours, probes, analyses refusal.

    Example:

      sftlens quickstart

      sftlens quickstart --scale small --out runs/small
    """
    from sftlens.experiments._experiment import quickstart

    res = quickstart(out, scale=scale, dry_run=dry_run)
    if dry_run:
        return
    typer.echo(f"report: {res.resolve()}")
    typer.echo(f"summary: {res.parent.resolve() / 'summary.md'}")


def report_cmd(
    run_dir: Path = typer.Argument(..., help="a run folder (with tables/)"),
) -> None:
    """Rewrite a run's report (report/index.html and summary.md) from its tables.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens report toy
    """
    from sftlens.core import DataError
    from sftlens.experiments._report import TABLES_DIR, write_report

    if not (run_dir / TABLES_DIR).is_dir():
        raise DataError(f"{run_dir}: no {TABLES_DIR}/ folder; run the experiment first.")
    typer.echo(f"report: {write_report(run_dir)}")


def register(app: typer.Typer) -> None:
    """Add the experiment verbs to the `sftlens` app."""
    app.command("run")(run_cmd)
    app.command("quickstart")(quickstart_cmd)
    app.command("report")(report_cmd)
