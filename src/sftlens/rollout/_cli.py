"""CLI verbs of the rollout stage: ``generate``, ``score``, ``table``, ``dip``."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import ConfigError, DataError, out_dir, out_file
from sftlens.rollout._config import GenerateConfig

TABLE_FILE = "table.parquet"


def _eval_sets(
    specs: list[str], n: int, seed: int, fields: str = "", sample: int = 0
) -> list[dict]:
    """``countdown`` -> a generated set; ``math@probs.jsonl`` / ``probs.jsonl`` -> a file set
    (``fields``, ``prompt=KEY,answer=KEY``, names the columns of every file set; ``sample``
    draws a seeded subsample of each)."""
    from sftlens.tasks import parse_fields

    roles = parse_fields(fields)
    out = []
    for spec in specs:
        if "@" in spec:
            task, file = spec.split("@", 1)
            out.append({"task": task, "file": file, "fields": roles, "seed": seed,
                        "sample": sample})  # fmt: skip
        elif Path(spec).suffix in (".jsonl", ".json", ".csv", ".parquet") or Path(spec).exists():
            out.append({"file": spec, "fields": roles, "seed": seed, "sample": sample})
        else:
            out.append({"task": spec, "n": n, "seed": seed})
    return out


def _merge(base: dict, upd: dict) -> dict:
    """Nested dict merge; `upd` wins (``--set`` overrides the flags)."""
    out = dict(base)
    for k, v in upd.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Flag defaults are the config's, so --help shows what a run without the flag uses.
_GEN = GenerateConfig()


def generate(
    ctx: typer.Context,
    config: Path | None = typer.Argument(None, help="YAML GenerateConfig (optional)"),
    model: list[str] = typer.Option([], "--model", "-m", help="run dir, model dir or hub id"),
    eval_set: list[str] = typer.Option(
        [], "--eval", "-e", help="TASK (generated), TASK@FILE or FILE.jsonl"
    ),
    eval_n: int = typer.Option(100, help="problems per generated eval set"),
    eval_seed: int = typer.Option(0, help="problem-generation seed (and choice shuffle)"),
    field: str = typer.Option(
        "", "--field", help="eval files' columns by role: prompt=KEY,answer=KEY,id=KEY"
    ),
    eval_sample: int = typer.Option(
        0, help="a seeded subsample of this many problems of each eval file (0 = all)"
    ),
    out: str = typer.Option(_GEN.out, "--out", "-o", callback=out_dir, help="output directory"),
    n: int = typer.Option(_GEN.sampling.n, "--n", help="samples per prompt"),
    temperature: float = typer.Option(_GEN.sampling.temperature, help="0 = greedy"),
    top_p: float = typer.Option(_GEN.sampling.top_p, help="nucleus mass; 1 = off"),
    top_k: int = typer.Option(_GEN.sampling.top_k, help="0 = off"),
    max_new_tokens: int = typer.Option(
        _GEN.sampling.max_new_tokens, help="token budget per completion"
    ),
    stop: list[str] = typer.Option(
        _GEN.sampling.stop, "--stop", help="stop string (repeatable; EOS always stops)"
    ),
    seed: int = typer.Option(_GEN.sampling.seed, help="sampling seed"),
    engine: str = typer.Option(_GEN.engine, help="hf | vllm"),
    batch_size: int = typer.Option(_GEN.batch_size, help="prompts per batch (hf)"),
    device: str = typer.Option(_GEN.device, help="torch device (hf)"),
    table: bool = typer.Option(True, help="also write <out>/table.parquet"),
    shard: str | None = typer.Option(
        None, help="K/N: shard K of N (by checkpoint, then problem); join with `merge`"
    ),
    set_: list[str] = typer.Option([], "--set", help="config override key=value"),
) -> None:
    """Sample every checkpoint on every eval set and score the completions.

    Writes <out>/traces.jsonl (one scored completion per line; rerunning resumes and skips
    what exists), <out>/generate_config.yaml, <out>/problems.jsonl and, unless --no-table,
    <out>/table.parquet (per-checkpoint metrics with bootstrap CIs).

    A flag left out takes the config file's value, else the default shown; --set overrides
    both.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens generate -m toy/models/strong-cot -e countdown -e harmful \\
        --eval-n 4 --max-new-tokens 32 -o out

      sftlens data countdown-hard --n 4 --split eval --out hard.jsonl

      sftlens generate -m toy/models/strong-cot -e countdown@hard.jsonl \\
        --n 2 --temperature 0.7 --max-new-tokens 32 -o out2

      sftlens generate out/generate_config.yaml --set sampling.seed=1 -o out3
    """
    from sftlens.rollout import GenerateConfig, checkpoint_table, generate_traces, write_table

    over: dict = {}
    if model:
        over["models"] = [{"path": m} for m in model]
    if eval_set:
        over["eval_sets"] = _eval_sets(eval_set, eval_n, eval_seed, field, eval_sample)
    given = {
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    sampling = {
        k: list(v) if k == "stop" else v
        for k, v in {
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "stop": stop,
        }.items()
        if k in given
    }
    if sampling:
        over["sampling"] = sampling
    if shard:
        over["shard"] = shard
    for k, v in {"out": out, "engine": engine, "batch_size": batch_size, "device": device}.items():
        if k in given:
            over[k] = v
    from sftlens.core import parse_overrides

    cfg = GenerateConfig.load(config, overrides=_merge(over, parse_overrides(set_)))
    traces = generate_traces(cfg, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"traces: {traces}")
    if table and not cfg.shard:  # a shard's table is written by `sftlens merge`
        path = write_table(checkpoint_table(traces), Path(cfg.out) / TABLE_FILE)
        typer.echo(f"table: {path}")


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

      sftlens run countdown_lab --scale micro --out toy

      sftlens score toy/traces/strong-cot/traces.jsonl -o scored.jsonl

      sftlens score scored.jsonl -o rescored.jsonl --phrase "i won't"
    """
    from sftlens.rollout import RefusalConfig, RefusalJudge, rescore_traces

    if prefix_chars < 0:
        raise ConfigError(f"--prefix-chars {prefix_chars}: use 0 (all) or a positive count.")
    rc = RefusalConfig.from_dict(
        {"prefix_chars": prefix_chars, **({"phrases": phrase} if phrase else {})}
    )
    count = rescore_traces(traces, out, RefusalJudge.from_config(rc))
    typer.echo(f"scored {count} traces -> {out}")


def table_cmd(
    traces: Path = typer.Argument(..., help="traces (sftlens JSONL or any imported format)"),
    out: Path = typer.Option(..., "--out", "-o", callback=out_file, help="table parquet"),
    fmt: str = typer.Option("auto", "--format", help="input format (see `sftlens import`)"),
    text_field: str | None = typer.Option(None, help="field path to the text"),
    id_field: str | None = typer.Option(None, help="field path to the id"),
    model: str | None = typer.Option(None, help="model name for every trace"),
    step: int | None = typer.Option(None, help="checkpoint step for every trace"),
    step_from: str | None = typer.Option(
        None, help="regex over the path whose group is the step, e.g. 'step(\\d+)'"
    ),
    plot: list[str] = typer.Option([], "--plot", help="metric to plot (PNG + CSV beside --out)"),
    n_boot: int = typer.Option(1000, help="bootstrap resamples"),
    ci: float = typer.Option(0.95, help="confidence level"),
    seed: int = typer.Option(0, help="bootstrap seed"),
) -> None:
    """Per-checkpoint table (long format, bootstrap CIs over problems) from traces.

    Reads sftlens traces and every format `sftlens import` reads (lm-eval samples keep their
    metrics as the score); metrics a source cannot give (lengths without token counts) are
    left out.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens table toy/traces/strong-cot/traces.jsonl -o tables/evals.parquet \\
        --plot accuracy --n-boot 200
    """
    from sftlens.core import read_traces
    from sftlens.rollout import checkpoint_table, plot_curves, write_table

    if not 0 < ci < 1:
        raise ConfigError(f"--ci {ci}: use a level in (0, 1), e.g. 0.95.")
    if n_boot < 1:
        raise ConfigError(f"--n-boot {n_boot}: use at least 1 resample, e.g. 1000.")
    imported = read_traces(traces, fmt, text_field=text_field, id_field=id_field, model=model,
                           step=step, step_from=step_from)  # fmt: skip
    df = checkpoint_table(imported.records, n_boot=n_boot, ci=ci, seed=seed)
    if not len(df):
        raise DataError(
            f"{traces}: nothing to tabulate: no score, n_tokens or finish_reason in the "
            f"{imported.format} records (null: {', '.join(imported.missing)}); for behaviour "
            "tables run `sftlens tag` then `sftlens tag-table`."
        )
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

      sftlens run countdown_lab --scale micro --out toy

      sftlens dip toy/tables/evals.parquet --metric accuracy

      sftlens dip toy/tables/evals.parquet --metric length --direction up --json
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


def register(app: typer.Typer) -> None:
    """Add the rollout verbs to the `sftlens` app."""
    app.command("generate")(generate)
    app.command("score")(score)
    app.command("table")(table_cmd)
    app.command("dip")(dip)
