"""CLI verb of the resolver: ``checkpoints`` (what every other verb would load, in order)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``checkpoints`` verb to the `sftlens` app."""

    @app.command()
    def checkpoints(
        refs: list[str] = typer.Argument(
            ..., help="run dir, checkpoint dir, hub id (@rev, :subfolder, patterns), name=path@step"
        ),
        json_out: bool = typer.Option(False, "--json", help="print JSON rows"),
    ) -> None:
        """List the checkpoints each reference resolves to: name, step, path, loss.

        Each reference is one model's series, in step order, exactly as `generate`, `refusal`,
        the probe verbs and experiment specs read it; hub ids are listed without downloading.

        Example:

          sftlens checkpoints outputs/qwen3-sft          # checkpoint-N/ (+ final), from TRL

          sftlens checkpoints 'EleutherAI/pythia-160m@step*'

          sftlens checkpoints ckpts/global_step_100 sft=other/dir@250
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
