"""Verbs `sftlens run`, `sftlens quickstart`, `sftlens report`."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import out_dir


def run_cmd(
    spec: str = typer.Argument(..., help="spec YAML path, or a shipped spec name (listed above)"),
    scale: str = typer.Option(None, "--scale", help="size preset: micro | tiny | small | full"),
    out: Path = typer.Option(
        None, "--out", callback=out_dir, help="run folder (default runs/<spec name>)"
    ),
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
    out: Path = typer.Option(Path("runs/quickstart"), "--out", callback=out_dir, help="run folder"),
    scale: str = typer.Option("tiny", "--scale", help="size preset: micro | tiny | small"),
    pretrain: bool = typer.Option(
        False, "--pretrain", help="pretrain the toy bases instead of using the shipped ones"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan; run nothing"),
) -> None:
    """The toy world end to end on CPU (countdown_lab at tiny scale), then the report path.

    Takes the weak and strong toy bases shipped with sftlens (or pretrains them with
    --pretrain; the shipped ones are exactly what that pretraining writes), SFTs both on
    Countdown chain-of-thought with a log-spaced checkpoint grid, samples every checkpoint
    in-domain, on harder Countdown, on a cross-domain task and on harmful prompts, tags
    behaviours, probes, analyses refusal, and opens the report with a findings table.

    Example:

      sftlens quickstart

      sftlens quickstart --scale small --out runs/small

      sftlens quickstart --pretrain --out runs/quickstart-pretrained
    """
    from sftlens.experiments._experiment import quickstart

    res = quickstart(out, scale=scale, pretrain=pretrain, dry_run=dry_run)
    if dry_run:
        return
    typer.echo(f"report: {res.resolve()}")
    typer.echo(f"summary: {res.parent.resolve() / 'summary.md'}")


def bases_cmd(
    out: Path = typer.Option(
        Path("runs/bases/export"), "--out", help="where the rebuilt bases are written"
    ),
    run_dir: Path = typer.Option(
        Path("runs/bases/run"), "--run-dir", help="run folder of the pretraining stages"
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="compare the rebuilt bases with the shipped ones, tensor by tensor",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan; run nothing"),
) -> None:
    """Rebuild the toy bases the quickstart ships (countdown_lab, tiny scale, seed 0).

    Runs the data, tokenizer and pretraining stages with shipped bases off and writes each
    base as the package stores it (sharded safetensors, tokenizer, recipe.json). With
    --check, says whether each equals the shipped one byte for byte (expected on the machine
    that built them, with the thread count recorded in their recipe.json: run it with
    OMP_NUM_THREADS=1). About half an hour on two cores.

    Example:

      sftlens bases --check
    """
    from sftlens.core import DataError
    from sftlens.experiments._bases import compare, rebuild_bases, shipped_root

    built = rebuild_bases(run_dir, out, dry_run=dry_run)
    bad = []
    for base, path in built.items():
        typer.echo(f"{base}: {path}")
        if check:
            diff = compare(path, shipped_root() / base)
            typer.echo(
                f"  {'identical to the shipped base' if not diff else 'differs: ' + ', '.join(diff[:5])}"
            )
            bad += [base] if diff else []
    if bad:
        raise DataError(
            f"rebuilt {', '.join(bad)} differ from the shipped bases; on another machine or "
            "thread count that is expected (compare their behaviour instead)."
        )


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
    app.command("bases")(bases_cmd)
    app.command("report")(report_cmd)
