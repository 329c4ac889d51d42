"""Verbs of `sftlens.core`: ``checkpoints`` (what the resolver finds) and ``import`` (completions
from other tools into one Trace JSONL file)."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core._traces import TRACE_FORMATS, read_traces

MANIFEST_SUFFIX = ".manifest.json"


def import_cmd(
    in_path: Path = typer.Argument(
        ..., metavar="IN", help="Completions (JSONL, JSON, CSV, parquet) in any known format."
    ),
    out: Path = typer.Option(..., "--out", help="Trace JSONL to write."),
    fmt: str = typer.Option(
        "auto", "--format", help=f"Input format: {' | '.join(TRACE_FORMATS)} (auto detects it)."
    ),
    text_field: str | None = typer.Option(
        None, help="Field path to the text, e.g. 'messages[-1].content' (default: the format's)."
    ),
    id_field: str | None = typer.Option(None, help="Field path to the record id."),
    model: str | None = typer.Option(None, help="Model name for every trace."),
    step: int | None = typer.Option(None, help="Checkpoint step for every trace."),
    step_from: str | None = typer.Option(
        None, help="Regex over IN's path whose first group is the step, e.g. 'step(\\d+)'."
    ),
    model_from: str | None = typer.Option(
        None, help="Regex over IN's path whose first group is the model name."
    ),
    task: str | None = typer.Option(None, help="Task name for every trace."),
) -> None:
    """Write the Trace contract (one completion per line) from OpenAI chat messages, chat
    completions, OpenAI/vLLM batch output, vLLM outputs, lm-evaluation-harness samples or a
    table with a text column.

    Fields the source lacks (finish_reason, n_tokens, sampling, ...) are null, never guessed,
    and listed in OUT.manifest.json beside the detected format.

    The model and step come from the records, from the file name (--step-from 'step(\\d+)'
    on results/step400/batch_output.jsonl) or from --model/--step; an lm-eval file
    samples_gsm8k_<date>.jsonl also gives its task.

    Example:

      sftlens data countdown --n 20 --style cot --out cd.jsonl

      sftlens import cd.jsonl --text-field response --model toy --step 0 \\
        --out traces.jsonl
    """
    from sftlens.core._io import write_json, write_jsonl

    imported = read_traces(in_path, fmt, text_field=text_field, id_field=id_field, model=model,
                           step=step, step_from=step_from, model_from=model_from,
                           task=task)  # fmt: skip
    n = write_jsonl(out, imported.records)
    write_json(out.with_name(out.name + MANIFEST_SUFFIX), imported.manifest())
    missing = ", ".join(imported.missing) or "none"
    typer.echo(f"imported {n} traces ({imported.format}) -> {out}; null fields: {missing}")


def checkpoints(
    refs: list[str] = typer.Argument(
        ..., help="run dir, checkpoint dir, hub id (@rev, :subfolder, patterns), name=path@step"
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON rows"),
) -> None:
    """List the checkpoints each reference resolves to: name, step, path, loss.

    Each reference is one model's series, in step order, exactly as `generate`, `refusal`,
    the probe verbs and experiment specs read it; hub ids are listed without downloading.

    A reference is a run folder (sftlens, or TRL / HF Trainer / LLaMA-Factory checkpoint-N/,
    or verl global_step_N/), a PEFT adapter, a hub id with @revision or :subfolder or a
    pattern over either ('EleutherAI/pythia-160m@step*'), or name=path@step.

    Example:

      sftlens data base-corpus --n 300 --out base.jsonl

      sftlens train -s objective=pretrain -s model=toy-tiny -s data=base.jsonl \\
        -s max_steps=4 -o run

      sftlens checkpoints run

      sftlens checkpoints base=run/checkpoints/step-000000@0 --json
    """
    import json

    from sftlens.core import resolve_series

    rows = []
    for ref in refs:
        series = resolve_series(ref, fetch=False, log=lambda m: typer.echo(m, err=True))
        for ck in series.checkpoints:
            rows.append(
                {
                    "model": series.name,
                    "name": ck.name,
                    "step": ck.step,
                    "step_source": ck.step_source,
                    "path": ck.source or ck.path,
                    "loss": ck.loss,
                }
            )
    if json_out:
        typer.echo(json.dumps(rows))
        return
    header = ("model", "name", "step", "from", "loss", "path")
    table = [
        (
            r["model"],
            r["name"] or "",
            "" if r["step"] is None else str(r["step"]),
            r["step_source"] or "",
            "" if r["loss"] is None else f"{r['loss']:.4g}",
            r["path"],
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def register(app: typer.Typer) -> None:
    """Add ``checkpoints`` and ``import`` to the `sftlens` app."""
    app.command("checkpoints")(checkpoints)
    app.command("import")(import_cmd)
