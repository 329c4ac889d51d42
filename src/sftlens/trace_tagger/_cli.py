"""``sftlens tag``, ``sftlens tag-table`` and ``sftlens tag-html``: thin wrappers over the tagger."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import TRACE_FORMATS, ConfigError, out_file
from sftlens.trace_tagger._ruleset import RULESET_ID

FORMAT_HELP = f"Input format: {' | '.join(TRACE_FORMATS)} (auto detects it)."


def tag(
    in_path: Path | None = typer.Argument(
        None, metavar="IN", help="Traces or completions (JSONL, JSON, CSV, parquet)."
    ),
    text: str | None = typer.Option(
        None, "--text", help="Tag this one text and print its spans (instead of a file)."
    ),
    text_field: str | None = typer.Option(
        None, help="Field path to the text, e.g. 'messages[-1].content' (default: the format's)."
    ),
    id_field: str | None = typer.Option(None, help="Field path copied to the Tags id."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    out: Path | None = typer.Option(None, "--out", callback=out_file, help="Tags JSONL to write."),
    workers: int = typer.Option(1, help="Worker processes."),
    ruleset: str = typer.Option(RULESET_ID, help="Rule-set id."),
    shard: str | None = typer.Option(
        None, help="K/N: tag block K of N of the records into OUT.shard-K-of-N (see `merge`)."
    ),
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
    chaining, hedging) and verbosity in a file of completions, or in one text.

    Reads sftlens traces, OpenAI chat messages or chat completions, OpenAI/vLLM batch output,
    vLLM outputs, lm-evaluation-harness samples, or a table with a text column (--format auto
    detects which). Writes one Tags record per completion (id, ruleset, spans, counts,
    verbosity), in input order; an interrupted run resumes from OUT.partial.

    Example:

      sftlens data countdown --n 50 --style cot --out cd.jsonl

      sftlens tag cd.jsonl --text-field response --out tags.jsonl --workers 2

      sftlens tag --text "Wait, that's not right. Let me verify: 4*6 = 24."

      sftlens tag cd.jsonl --text-field response --out part.jsonl --shard 2/4

      sftlens tag cd.jsonl --text-field response --calibration default \\
        --out fit.jsonl

      sftlens data base-corpus --n 300 --out base.jsonl

      sftlens train -s objective=pretrain -s model=toy-tiny -s data=base.jsonl \\
        -s max_steps=4 -o run

      sftlens tag cd.jsonl --text-field response --limit 2 \\
        --judge run/checkpoints/step-000004 --out judge.jsonl
    """
    if judge is not None:
        if in_path is None or out is None or text is not None or calibration is not None:
            raise ConfigError(
                "--judge needs IN.jsonl and --out OUT.jsonl (no --text or --calibration)."
            )
        # The judge backend lives outside trace_tagger (which stays model-free); this verb only
        # hands the file to it.
        from sftlens.judge import judge_file

        # The judge reads JSONL records by key (the Trace contract's unless named).
        n = judge_file(in_path, out, judge, text_field=text_field or "completion",
                       id_field=id_field or "id", limit=limit, device=judge_device)  # fmt: skip
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
    from sftlens.core import parse_shard, shard_block, shard_file
    from sftlens.trace_tagger._batch import tag_file

    part = parse_shard(shard)
    src = in_path
    if part:
        if in_path.suffix.lower() not in (".jsonl", ".ndjson"):
            raise ConfigError(
                f"{in_path}: --shard splits JSONL lines; write one file first with "
                "`sftlens import IN --out traces.jsonl`."
            )
        if not in_path.is_file():
            raise ConfigError(f"{in_path}: no such file; check the path.")
        # The shard's block of records (blank lines skipped), tagged like a whole file.
        lines = [ln for ln in in_path.read_bytes().splitlines(keepends=True) if ln.strip()]
        out = shard_file(out, part)
        src = out.with_name(f".{out.name}.input.jsonl")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(b"".join(lines[i] for i in shard_block(len(lines), part)))
    try:
        n = tag_file(src, out, text_field=text_field, id_field=id_field, workers=workers,
                     ruleset=ruleset, fmt=fmt, calibration=calibration)  # fmt: skip
    finally:
        if part:
            src.unlink(missing_ok=True)
    typer.echo(f"tagged {n} records -> {out}")


def tag_table_cmd(
    tags_path: Path = typer.Argument(..., metavar="TAGS.jsonl", help="Tags JSONL."),
    traces: Path = typer.Option(..., "--traces", help="The file the tags were made from."),
    out: Path = typer.Option(..., "--out", callback=out_file, help="Parquet table to write."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples over traces."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    text_field: str | None = typer.Option(None, help="Field path to the text (as for tag)."),
    id_field: str | None = typer.Option(None, help="Field path to the id (as for tag)."),
    model: str | None = typer.Option(None, help="Model name for every trace."),
    step: int | None = typer.Option(None, help="Checkpoint step for every trace."),
    step_from: str | None = typer.Option(
        None, help="Regex over the traces' path whose group is the step, e.g. 'step(\\d+)'."
    ),
    calibration: str | None = typer.Option(
        None,
        "--calibration",
        help="Require every Tags record to come from this fitted layer (or 'default'): a table "
        "never mixes counts of different fits.",
    ),
) -> None:
    """Aggregate tags per model, checkpoint step, task and correctness into a long-format
    parquet table (model, step, task, correct, metric, value, ci_low, ci_high, n).

    Model and step come from the traces (``model``, ``step``, ``checkpoint.step``), from the
    file name (--step-from), or from --model/--step; correctness from the traces' score (an
    lm-eval metric, a ``correct`` column).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens tag-table toy/tags/strong-cot.jsonl \\
        --traces toy/traces/strong-cot/traces.jsonl --out tables/tags.parquet
    """
    from sftlens.core import read_traces, write_parquet
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
    records = read_traces(traces, fmt, text_field=text_field, id_field=id_field, model=model,
                          step=step, step_from=step_from).records  # fmt: skip
    df = tag_table(tags, records, n_boot=n_boot, seed=seed)
    write_parquet(df, out)
    typer.echo(f"{len(df)} rows -> {out}")


def tag_html_cmd(
    tags_path: Path = typer.Argument(..., metavar="TAGS.jsonl", help="Tags JSONL."),
    traces: Path = typer.Option(..., "--traces", help="The file the tags were made from."),
    out: Path = typer.Option(..., "--out", callback=out_file, help="HTML file to write."),
    text_field: str | None = typer.Option(None, help="Field path to the text (as for tag)."),
    id_field: str | None = typer.Option(None, help="Field path to the id (as for tag)."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    limit: int = typer.Option(50, help="Show at most this many records."),
) -> None:
    """Write an HTML page of tagged records with the spans highlighted (displaCy spans).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens tag-html toy/tags/strong-cot.jsonl \\
        --traces toy/traces/strong-cot/traces.jsonl --out tags.html --limit 20
    """
    from sftlens.core import read_traces
    from sftlens.trace_tagger._batch import read_tags
    from sftlens.trace_tagger._html import write_html

    if limit < 0:
        raise ConfigError(f"--limit {limit}: use 0 or more records.")
    records = read_traces(traces, fmt, text_field=text_field, id_field=id_field).records[:limit]
    write_html(out, records, read_tags(tags_path), text_field="completion", id_field="id")
    typer.echo(f"{len(records)} records -> {out}")


def register(app: typer.Typer) -> None:
    """Add the tagger's verbs to the `sftlens` app."""
    app.command("tag")(tag)
    app.command("tag-table")(tag_table_cmd)
    app.command("tag-html")(tag_html_cmd)
    from sftlens.trace_tagger import _cli_fit

    _cli_fit.register(app)
