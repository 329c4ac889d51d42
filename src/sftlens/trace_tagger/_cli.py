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
    calibration: str | None = typer.Option(
        None,
        "--calibration",
        help="A fitted layer over the rules (sftlens tag-fit), or 'default' for the one "
        "shipped in the package; without it the rules alone tag (deterministic, pure rules).",
    ),
    judge: str | None = typer.Option(
        None,
        "--judge",
        help="Label sentences with this local HF causal LM (dir or hub id) instead of the "
        "rules (optional backend, sftlens.judge; needs torch and a model).",
    ),
    judge_device: str = typer.Option("cpu", help="Torch device of the --judge model."),
    limit: int | None = typer.Option(None, help="With --judge: only the first N records."),
) -> None:
    """Tag reasoning behaviours (backtracking, verification, subgoal setting, backward
    chaining, hedging) and verbosity in a JSONL file of texts, or in one text.

    Writes one Tags record per input record (id, ruleset, spans, counts, verbosity), in input
    order; an interrupted run resumes from OUT.partial.

    Example:

      sftlens tag traces.jsonl --text-field completion --out tags.jsonl --workers 4

      sftlens tag --text "Wait, that's not right. Let me verify: 4*6 = 24."

      sftlens tag traces.jsonl --calibration my-tagger.json --out tags.jsonl

      sftlens tag labels.jsonl --text-field text --judge Qwen/Qwen3-8B --judge-device cuda --limit 20 --out judge.jsonl
    """
    if judge is not None:
        if in_path is None or out is None or text is not None or calibration is not None:
            raise ConfigError(
                "--judge needs IN.jsonl and --out OUT.jsonl (no --text or --calibration)."
            )
        # The judge backend lives outside trace_tagger (which stays model-free); this verb only
        # hands the file to it.
        from sftlens.judge import judge_file

        n = judge_file(in_path, out, judge, text_field=text_field, id_field=id_field,
                       limit=limit, device=judge_device)  # fmt: skip
        typer.echo(f"judged {n} records -> {out}")
        return
    if limit is not None:
        raise ConfigError("--limit applies to --judge only; the rules tag every record.")
    if text is not None:
        if in_path is not None:
            raise ConfigError("give either IN.jsonl or --text, not both.")
        from sftlens.trace_tagger._batch import format_spans
        from sftlens.trace_tagger._tagger import get_tagger

        typer.echo(format_spans(text, get_tagger(ruleset, calibration).tag(text)))
        return
    if in_path is None or out is None:
        raise ConfigError("give IN.jsonl and --out OUT.jsonl (or --text TEXT for one text).")
    from sftlens.trace_tagger._batch import tag_file

    n = tag_file(in_path, out, text_field=text_field, id_field=id_field, workers=workers,
                 ruleset=ruleset, calibration=calibration)  # fmt: skip
    typer.echo(f"tagged {n} records -> {out}")


def tag_table_cmd(
    tags_path: Path = typer.Argument(..., metavar="TAGS.jsonl", help="Tags JSONL."),
    traces: Path = typer.Option(..., "--traces", help="Traces JSONL the tags were made from."),
    out: Path = typer.Option(..., "--out", help="Parquet table to write."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples over traces."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    calibration: str | None = typer.Option(
        None,
        "--calibration",
        help="Require every Tags record to come from this fitted layer (or 'default'): a table "
        "never mixes counts of different fits.",
    ),
) -> None:
    """Aggregate tags per model, checkpoint step, task and correctness into a long-format
    parquet table (model, step, task, correct, metric, value, ci_low, ci_high, n).

    Example:

      sftlens tag-table tags.jsonl --traces traces.jsonl --out tables/tags.parquet

      sftlens tag-table tags.jsonl --traces traces.jsonl --calibration my-tagger.json --out t.parquet
    """
    from sftlens.core import read_jsonl, write_parquet
    from sftlens.trace_tagger._aggregate import tag_table
    from sftlens.trace_tagger._batch import read_tags

    if n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {n_boot}.")
    tags = read_tags(tags_path)
    if calibration is not None:
        from sftlens.trace_tagger._calibration import resolve_calibration

        want = resolve_calibration(calibration).tag_id
        for k, rec in enumerate(tags, 1):
            if rec.get("ruleset") != want:
                raise ConfigError(
                    f"{tags_path}: record {k} was tagged by {rec.get('ruleset')!r}, not by "
                    f"{want!r}; tag again with `sftlens tag --calibration {calibration}`."
                )
    df = tag_table(tags, read_jsonl(traces, required=("id",)), n_boot=n_boot,
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

      sftlens tag-html tags.jsonl --traces traces.jsonl --out report/tags.html --limit 20
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
    from sftlens.trace_tagger import _cli_fit

    _cli_fit.register(app)
