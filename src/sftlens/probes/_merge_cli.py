"""``sftlens merge``: join the shards of a ``--shard K/N`` job into a single run's files."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import DataError


def merge(
    out: Path = typer.Argument(..., help="the --out of the sharded job (folder or file)"),
    table: bool = typer.Option(True, help="also write <out>/table.parquet (generate)"),
) -> None:
    """Join the shards of a `--shard K/N` job into the files a single run writes.

    A folder of shard-K-of-N/ outputs from `generate` becomes <out>/traces.jsonl, problems,
    config and table.parquet; from `refusal`, refusal.parquet with its directions, parts,
    manifest and plots; from `probe dead-end` or `probe drift`, their tables. A file whose
    siblings are NAME.shard-K-of-N.jsonl (`tag`) becomes NAME.jsonl, the shards in order.

    Example:

      sftlens data countdown --n 20 --style cot --out cd.jsonl

      sftlens tag cd.jsonl --text-field response --out tags.jsonl --shard 1/2

      sftlens tag cd.jsonl --text-field response --out tags.jsonl --shard 2/2

      sftlens merge tags.jsonl
    """
    from sftlens.rollout._sweep import TRACES_FILE, merge_file_shards, merge_traces

    if not out.is_dir():
        typer.echo(f"merged {merge_file_shards(out)} shards -> {out}")
        return
    first = next(iter(sorted(out.glob("shard-1-of-*"))), None)
    if first is None:
        raise DataError(f"{out}: no shard-1-of-N/ folder to merge; run with --shard K/N.")
    if (first / TRACES_FILE).is_file():
        from sftlens.rollout import checkpoint_table, write_table

        traces = merge_traces(out)
        typer.echo(f"traces: {traces}")
        if table:
            typer.echo(f"table: {write_table(checkpoint_table(traces), out / 'table.parquet')}")
        return
    from sftlens.probes._analyses import DEAD_END_TABLE, DRIFT_TABLE
    from sftlens.probes._refusal_eval import TABLE_FILE
    from sftlens.probes._shards import merge_refusal_shards, merge_shard_tables

    if (first / TABLE_FILE).is_file():
        merge_refusal_shards(out)
        typer.echo(f"refusal: {out / TABLE_FILE}")
        return
    from sftlens.probes._plots import plot_drift, plot_probe_auroc

    for name, plot, png in (
        (DEAD_END_TABLE, plot_probe_auroc, "dead_end_auroc.png"),
        (DRIFT_TABLE, plot_drift, "drift.png"),
    ):
        if (first / name).is_file():
            plot(merge_shard_tables(out, name), out / png)
            typer.echo(f"table: {out / name}")
            return
    raise DataError(f"{first}: no traces, refusal or probe table in it; nothing to merge.")


def register(app: typer.Typer) -> None:
    """Add the ``merge`` verb."""
    app.command("merge")(merge)
