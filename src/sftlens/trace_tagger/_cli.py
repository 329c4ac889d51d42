"""``sftlens tag``, ``sftlens tag-table`` and ``sftlens tag-html``: thin wrappers over the tagger."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import ConfigError
from sftlens.trace_tagger._ruleset import RULESET_ID


def tag(
    in_path: Path | None = typer.Argument(None, metavar="IN.jsonl", help="JSONL of texts."),
    text: str | None = typer.Option(
        None, "--text", help="Tag this one text and print its spans (instead of a file)."
    ),
    text_field: str = typer.Option("completion", help="Record key holding the text."),
    id_field: str = typer.Option("id", help="Record key copied to the Tags id."),
    out: Path | None = typer.Option(None, "--out", help="Tags JSONL to write."),
    workers: int = typer.Option(1, help="Worker processes."),
    ruleset: str = typer.Option(RULESET_ID, help="Rule-set id."),
) -> None:
    """Tag reasoning behaviours (backtracking, verification, subgoal setting, backward
    chaining, hedging) and verbosity in a JSONL file of texts, or in one text.

    Writes one Tags record per input record (id, ruleset, spans, counts, verbosity), in input
    order; an interrupted run resumes from OUT.partial.

    Example:

      sftlens data countdown --n 50 --style cot --out cd.jsonl

      sftlens tag cd.jsonl --text-field response --out tags.jsonl --workers 2

      sftlens tag --text "Wait, that's not right. Let me verify: 4*6 = 24."
    """
    if text is not None:
        if in_path is not None:
            raise ConfigError("give either IN.jsonl or --text, not both.")
        from sftlens.trace_tagger._batch import format_spans
        from sftlens.trace_tagger._tagger import get_tagger

        typer.echo(format_spans(text, get_tagger(ruleset).tag(text)))
        return
    if in_path is None or out is None:
        raise ConfigError("give IN.jsonl and --out OUT.jsonl (or --text TEXT for one text).")
    from sftlens.trace_tagger._batch import tag_file

    n = tag_file(in_path, out, text_field=text_field, id_field=id_field, workers=workers,
                 ruleset=ruleset)  # fmt: skip
    typer.echo(f"tagged {n} records -> {out}")


def tag_table_cmd(
    tags_path: Path = typer.Argument(..., metavar="TAGS.jsonl", help="Tags JSONL."),
    traces: Path = typer.Option(..., "--traces", help="Traces JSONL the tags were made from."),
    out: Path = typer.Option(..., "--out", help="Parquet table to write."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples over traces."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Aggregate tags per model, checkpoint step, task and correctness into a long-format
    parquet table (model, step, task, correct, metric, value, ci_low, ci_high, n).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens tag-table toy/tags/strong-cot.jsonl \\
        --traces toy/traces/strong-cot/traces.jsonl --out tables/tags.parquet
    """
    from sftlens.core import read_jsonl, write_parquet
    from sftlens.trace_tagger._aggregate import tag_table
    from sftlens.trace_tagger._batch import read_tags

    if n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {n_boot}.")
    df = tag_table(read_tags(tags_path), read_jsonl(traces, required=("id",)), n_boot=n_boot,
                   seed=seed)  # fmt: skip
    write_parquet(df, out)
    typer.echo(f"{len(df)} rows -> {out}")


def tag_html_cmd(
    tags_path: Path = typer.Argument(..., metavar="TAGS.jsonl", help="Tags JSONL."),
    traces: Path = typer.Option(..., "--traces", help="JSONL of the tagged records."),
    out: Path = typer.Option(..., "--out", help="HTML file to write."),
    text_field: str = typer.Option("completion", help="Record key holding the text."),
    id_field: str = typer.Option("id", help="Record key matching the Tags id."),
    limit: int = typer.Option(50, help="Show at most this many records."),
) -> None:
    """Write an HTML page of tagged records with the spans highlighted (displaCy spans).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens tag-html toy/tags/strong-cot.jsonl \\
        --traces toy/traces/strong-cot/traces.jsonl --out tags.html --limit 20
    """
    import itertools

    from sftlens.core import read_jsonl
    from sftlens.trace_tagger._batch import read_tags
    from sftlens.trace_tagger._html import write_html

    records = list(itertools.islice(read_jsonl(traces, required=(text_field,)), limit))
    write_html(out, records, read_tags(tags_path), text_field=text_field, id_field=id_field)
    typer.echo(f"{len(records)} records -> {out}")


def register(app: typer.Typer) -> None:
    """Add the tagger's verbs to the `sftlens` app."""
    app.command("tag")(tag)
    app.command("tag-table")(tag_table_cmd)
    app.command("tag-html")(tag_html_cmd)
