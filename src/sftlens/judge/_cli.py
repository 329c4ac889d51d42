"""``sftlens tag-judge``: label sentences with a local model judge, in the Tags contract."""

from __future__ import annotations

from pathlib import Path

import typer


def tag_judge_cmd(
    in_path: Path = typer.Argument(..., metavar="IN.jsonl", help="JSONL of texts."),
    model: str = typer.Option(..., "--model", help="Judge model: a local HF dir or hub id."),
    out: Path = typer.Option(..., "--out", help="Tags JSONL to write."),
    text_field: str = typer.Option("completion", help="Record key holding the text."),
    id_field: str = typer.Option("id", help="Record key copied to the Tags id."),
    limit: int | None = typer.Option(None, help="Judge only the first N records (a sample)."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cuda."),
) -> None:
    """Label each sentence with a local causal-LM judge (the rules' sentences; the answer with
    the highest log-probability, no sampling), writing Tags records with ruleset
    'judge:<model>'. Compare with the rules on labelled traces with tag-eval --tags.

    Example:

      sftlens tag-judge labels.jsonl --text-field text --model Qwen/Qwen3-8B --device cuda --limit 20 --out judge.jsonl

      sftlens tag-eval labels.jsonl --map 'self_checking=verification' --tags judge.jsonl
    """
    from sftlens.judge._judge import judge_file

    n = judge_file(in_path, out, model, text_field=text_field, id_field=id_field, limit=limit,
                   device=device)  # fmt: skip
    typer.echo(f"judged {n} records -> {out}")


def register(app: typer.Typer) -> None:
    """Add tag-judge to the `sftlens` app."""
    app.command("tag-judge")(tag_judge_cmd)
