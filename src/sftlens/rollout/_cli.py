"""CLI verbs of the rollout stage: ``generate``, ``score``, ``table``, ``dip``."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import ConfigError, out_dir, out_file

TABLE_FILE = "table.parquet"


def _eval_sets(specs: list[str], n: int, seed: int) -> list[dict]:
    """``countdown`` -> a generated set; ``math@probs.jsonl`` / ``probs.jsonl`` -> a file set."""
    out = []
    for spec in specs:
        if "@" in spec:
            task, file = spec.split("@", 1)
            out.append({"task": task, "file": file})
        elif Path(spec).suffix in (".jsonl", ".json", ".csv", ".parquet") or Path(spec).exists():
            out.append({"file": spec})
        else:
            out.append({"task": spec, "n": n, "seed": seed})
    return out


def _merge(base: dict, upd: dict) -> dict:
    """Nested dict merge; `upd` wins (``--set`` overrides the flags)."""
    out = dict(base)
    for k, v in upd.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def register(app: typer.Typer) -> None:
    """Add the rollout verbs to the `sftlens` app."""

    @app.command()
    def generate(
        config: Path | None = typer.Argument(None, help="YAML GenerateConfig (optional)"),
        model: list[str] = typer.Option([], "--model", "-m", help="run dir, model dir or hub id"),
        eval_set: list[str] = typer.Option(
            [], "--eval", "-e", help="TASK (generated), TASK@FILE or FILE.jsonl"
        ),
        eval_n: int = typer.Option(100, help="problems per generated eval set"),
        eval_seed: int = typer.Option(0, help="problem-generation seed"),
        out: str | None = typer.Option(
            None, "--out", "-o", callback=out_dir, help="output directory"
        ),
        n: int | None = typer.Option(None, "--n", help="samples per prompt"),
        temperature: float | None = typer.Option(None, help="0 = greedy"),
        top_p: float | None = typer.Option(None, help="nucleus mass"),
        top_k: int | None = typer.Option(None, help="0 = off"),
        max_new_tokens: int | None = typer.Option(None, help="token budget per completion"),
        stop: list[str] = typer.Option([], "--stop", help="stop string (repeatable)"),
        seed: int | None = typer.Option(None, help="sampling seed"),
        engine: str | None = typer.Option(None, help="hf | vllm"),
        batch_size: int | None = typer.Option(None, help="prompts per batch (hf)"),
        device: str | None = typer.Option(None, help="torch device (hf)"),
        table: bool = typer.Option(True, help="also write <out>/table.parquet"),
        set_: list[str] = typer.Option([], "--set", help="config override key=value"),
    ) -> None:
        """Sample every checkpoint on every eval set and score the completions.

        Writes <out>/traces.jsonl (one scored completion per line; rerunning resumes and skips
        what exists), <out>/generate_config.yaml, <out>/problems.jsonl and, unless --no-table,
        <out>/table.parquet (per-checkpoint metrics with bootstrap CIs).

        Example:

          sftlens generate -m runs/toy/models/strong -e countdown -e harmful -o out

          sftlens generate -m ckpt_dir -e math@math.jsonl --n 8 --temperature 0.7

          sftlens generate configs/generate.yaml --set sampling.n=8
        """
        from sftlens.rollout import GenerateConfig, checkpoint_table, generate_traces, write_table

        over: dict = {}
        if model:
            over["models"] = [{"path": m} for m in model]
        if eval_set:
            over["eval_sets"] = _eval_sets(eval_set, eval_n, eval_seed)
        sampling = {
            k: v
            for k, v in {
                "n": n,
                "temperature": temperature,
                "top_p": top_p,
                "top_k": top_k,
                "max_new_tokens": max_new_tokens,
                "seed": seed,
                "stop": list(stop) or None,
            }.items()
            if v is not None
        }
        if sampling:
            over["sampling"] = sampling
        for k, v in {
            "out": out,
            "engine": engine,
            "batch_size": batch_size,
            "device": device,
        }.items():
            if v is not None:
                over[k] = v
        from sftlens.core import parse_overrides

        cfg = GenerateConfig.load(config, overrides=_merge(over, parse_overrides(set_)))
        traces = generate_traces(cfg, log=lambda m: typer.echo(m, err=True))
        typer.echo(f"traces: {traces}")
        if table:
            path = write_table(checkpoint_table(traces), Path(cfg.out) / TABLE_FILE)
            typer.echo(f"table: {path}")

    @app.command()
    def score(
        traces: Path = typer.Argument(..., help="traces JSONL"),
        out: Path = typer.Option(
            ..., "--out", "-o", callback=out_file, help="re-scored traces JSONL (may be the input)"
        ),
        phrase: list[str] = typer.Option([], "--phrase", help="refusal phrase (repeatable)"),
        prefix_chars: int = typer.Option(0, help="judge only the first N characters"),
    ) -> None:
        """Re-score a traces file: task verifiers and the refusal-phrase judge.

        Example:

          sftlens score out/traces.jsonl -o rescored.jsonl --phrase "i won't"
        """
        from sftlens.rollout import RefusalConfig, RefusalJudge, rescore_traces

        if prefix_chars < 0:
            raise ConfigError(f"--prefix-chars {prefix_chars}: use 0 (all) or a positive count.")
        rc = RefusalConfig.from_dict(
            {"prefix_chars": prefix_chars, **({"phrases": phrase} if phrase else {})}
        )
        count = rescore_traces(traces, out, RefusalJudge.from_config(rc))
        typer.echo(f"scored {count} traces -> {out}")

    @app.command("table")
    def table_cmd(
        traces: Path = typer.Argument(..., help="traces JSONL"),
        out: Path = typer.Option(..., "--out", "-o", callback=out_file, help="table parquet"),
        plot: list[str] = typer.Option(
            [], "--plot", help="metric to plot (PNG + CSV beside --out)"
        ),
        n_boot: int = typer.Option(1000, help="bootstrap resamples"),
        ci: float = typer.Option(0.95, help="confidence level"),
        seed: int = typer.Option(0, help="bootstrap seed"),
    ) -> None:
        """Per-checkpoint table (long format, bootstrap CIs over problems) from traces.

        Example:

          sftlens table out/traces.jsonl -o out/table.parquet --plot accuracy
        """
        from sftlens.rollout import checkpoint_table, plot_curves, write_table

        if not 0 < ci < 1:
            raise ConfigError(f"--ci {ci}: use a level in (0, 1), e.g. 0.95.")
        if n_boot < 1:
            raise ConfigError(f"--n-boot {n_boot}: use at least 1 resample, e.g. 1000.")
        df = checkpoint_table(traces, n_boot=n_boot, ci=ci, seed=seed)
        unknown = [m for m in plot if m not in set(df.loc[df["step"].notna(), "metric"])]
        if unknown:
            # Checked before anything is written, so a typo leaves no table behind.
            raise ConfigError(
                f"--plot {unknown[0]!r}: no such metric with steps in {traces}; known: "
                f"{', '.join(sorted(set(df['metric'])))}."
            )
        write_table(df, out)
        typer.echo(f"table: {out} ({len(df)} rows)")
        for metric in plot:
            safe = metric.replace("@", "_at_")
            png, csv = plot_curves(df, metric, out.parent / f"{out.stem}_{safe}.png")
            typer.echo(f"plot: {png} (data: {csv})")

    @app.command()
    def dip(
        table_path: Path = typer.Argument(..., help="table parquet from `sftlens table`"),
        metric: str = typer.Option("accuracy", help="metric whose curve to read"),
        direction: str = typer.Option("down", help="down (dip) or up (peak)"),
        json_out: bool = typer.Option(False, "--json", help="print JSON rows"),
    ) -> None:
        """Report the dip and recovery of a metric's curve for every model and task.

        A dip counts only when the point's CI lies entirely below the base's CI; recovery is
        the first later step whose value is back within the base's CI (see sftlens.rollout).

        Example:

          sftlens dip out/table.parquet --metric accuracy
        """
        from sftlens.core import read_parquet
        from sftlens.rollout import detect_dips

        if direction not in ("down", "up"):
            raise ConfigError(f"--direction {direction!r}: use down or up.")
        cols = ("model", "task", "metric", "step", "value", "ci_low", "ci_high")
        res = detect_dips(read_parquet(table_path, columns=cols), metric, direction=direction)
        if json_out:
            typer.echo(res.drop(columns="summary").to_json(orient="records"))
        else:
            for line in res["summary"]:
                typer.echo(line)
