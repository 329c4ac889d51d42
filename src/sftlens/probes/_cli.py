"""CLI verbs of the probe stage: ``sftlens probe cache|fit|dead-end|appropriateness|steer|drift``."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import ConfigError

probe_app = typer.Typer(
    help=(
        "Probe activations: procedure or surface? Cache hooks at chosen positions, fit probes "
        "with grouped CV and controls, and run the dead-end, appropriateness, steering and "
        "drift analyses.\n\nExample:\n\n"
        "  sftlens run countdown_lab --scale micro --out toy\n\n"
        "  sftlens probe dead-end -m strong=toy/models/strong-cot -o probes \\\n"
        "    --n-problems 24"
    ),
    no_args_is_help=True,
)


def _models(specs: list[str]) -> dict[str, str]:
    """``name=path`` or ``path`` (named after the folder) -> ``{name: path}``."""
    if not specs:
        raise ConfigError("no model given; pass --model NAME=RUN_DIR (repeatable).")
    out: dict[str, str] = {}
    for s in specs:
        name, path = s.split("=", 1) if "=" in s else (Path(s).name, s)
        if name in out:
            raise ConfigError(f"--model {s}: the name {name!r} is used twice; name them NAME=DIR.")
        out[name] = path
    return out


def _ints(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{text!r}: expected comma-separated integers, e.g. 0,2,4.") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{text!r}: expected comma-separated numbers, e.g. -2,0,2.") from None


def _config(config: Path | None, overrides: list[str], **flags):
    """The YAML config (if any), then the flags that were given, then ``--set`` overrides."""
    from sftlens.core import parse_overrides
    from sftlens.probes._analyses import ProbeConfig

    data = ProbeConfig.load(config).to_dict()
    data.update({k: v for k, v in flags.items() if v not in (None, [], "")})
    data.update(parse_overrides(overrides))
    return ProbeConfig.from_dict(data)


def cache_cmd(
    checkpoint: str = typer.Argument(..., help="checkpoint dir (with tokenizer)"),
    data: Path = typer.Option(..., "--data", "-d", help="rendered examples JSONL (cot, events)"),
    out: Path = typer.Option(..., "--out", "-o", help="cache directory (resumed if it exists)"),
    hook: str = typer.Option("resid_post", help="hook kind per layer"),
    layers: str | None = typer.Option(None, help="comma-separated layers (default: all)"),
    kinds: str = typer.Option("step_end,pre_next", help="positions per step event"),
    batch_size: int = typer.Option(16, help="sequences per forward pass"),
    shard_traces: int = typer.Option(256, help="sequences per shard"),
    device: str = typer.Option("cpu", help="torch device"),
) -> None:
    """Cache hook activations at step-event positions into safetensors shards + parquet index.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens data countdown --n 40 --style cot --split eval --out cd.jsonl

      sftlens probe cache toy/models/strong-cot/checkpoints/step-000003 \\
        -d cd.jsonl -o cache --layers 0,1
    """
    from sftlens.core import read_jsonl
    from sftlens.probes._cache import cache_activations
    from sftlens.probes._datasets import dead_end_items
    from sftlens.probes._lens import hook_names, load_lens

    lens, tok, info = load_lens(checkpoint, device=device)
    hooks = hook_names(hook, _ints(layers) or range(info.n_layers))
    examples = read_jsonl(data, required=("id", "prompt", "response", "events"))
    cache = cache_activations(
        lens,
        dead_end_items(tok, examples, kinds=[k for k in kinds.split(",") if k]),
        hooks,
        out,
        batch_size=batch_size,
        shard_traces=shard_traces,
        meta=info.to_dict(),
    )
    s = cache.stats
    typer.echo(
        f"cached {s.n_rows} rows from {s.n_traces} traces ({s.n_traces_skipped} already done) "
        f"x {len(hooks)} hooks -> {out}"
    )


def fit_cmd(
    cache_dir: Path = typer.Argument(..., help="a cache directory from `probe cache`"),
    label: str = typer.Option("dead_end", help="label column of the index"),
    where: str | None = typer.Option(None, help="row filter, e.g. \"position_kind == 'step_end'\""),
    out: Path = typer.Option(..., "--out", "-o", help="output table (.parquet; .csv beside)"),
    n_splits: int = typer.Option(5, help="GroupKFold folds"),
    seed: int = typer.Option(0, help="fold and shuffle seed"),
) -> None:
    """Fit logistic and difference-in-means probes per hook with grouped CV and controls.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens data countdown --n 40 --style cot --split eval --out cd.jsonl

      sftlens probe cache toy/models/strong-cot/checkpoints/step-000003 \\
        -d cd.jsonl -o cache

      sftlens probe fit cache --label dead_end -o fit.parquet \\
        --where "position_kind == 'step_end'"
    """
    from sftlens.core import write_parquet, write_text
    from sftlens.probes._cache import ActivationCache
    from sftlens.probes._fit import fit_probes

    cache = ActivationCache(cache_dir)
    table = fit_probes(cache, label=label, where=where, n_splits=n_splits, seed=seed)
    write_parquet(table, out)
    write_text(out.with_suffix(".csv"), table.to_csv(index=False))
    best = table[(table["probe"] == "logreg") & (table["metric"] == "auroc")]
    typer.echo(best[["hook", "value"]].to_string(index=False))


def dead_end_cmd(
    model: list[str] = typer.Option([], "--model", "-m", help="NAME=RUN_DIR (repeatable)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    config: Path | None = typer.Option(None, help="YAML ProbeConfig"),
    n_problems: int | None = typer.Option(None, help="Countdown eval problems"),
    layers: str | None = typer.Option(None, help="comma-separated layers (default: all)"),
    steps: str | None = typer.Option(None, help="comma-separated checkpoint steps (default: all)"),
    device: str | None = typer.Option(None, help="torch device"),
    seed: int | None = typer.Option(None, help="problem and fold seed"),
    set_: list[str] = typer.Option([], "--set", help="config override key=value"),
) -> None:
    """Is "this state is a dead end" decodable at each layer before the backtrack is written?

    Writes <out>/dead_end.parquet/.csv, <out>/dead_end_auroc.png/.csv and per checkpoint
    <out>/<model>/step-NNNNNN/ (cache, probe.parquet, directions.safetensors, lens.json).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens probe dead-end -m strong=toy/models/strong-cot \\
        -m weak=toy/models/weak-cot -o probes --n-problems 24 --steps 0,3
    """
    from sftlens.probes._analyses import dead_end_probe
    from sftlens.probes._plots import plot_probe_auroc

    cfg = _config(
        config, set_, n_problems=n_problems, layers=_ints(layers), steps=_ints(steps),
        device=device, seed=seed,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    table = dead_end_probe(_models(model), out, cfg)
    png = plot_probe_auroc(table, out / "dead_end_auroc.png")
    t = table[(table["metric"] == "auroc") & (table["position_kind"] == "step_end")]
    piv = t.pivot_table(index=["model", "step", "subset", "layer"], columns="probe", values="value")
    typer.echo(piv.round(3).to_string())
    typer.echo(f"-> {out / 'dead_end.parquet'}, {png}")


def appropriateness_cmd(
    traces: Path = typer.Option(..., "--traces", "-t", help="traces JSONL from `sftlens generate`"),
    tags: Path = typer.Option(..., "--tags", help="tags JSONL from `sftlens tag` (same ids)"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="output table (.parquet; .csv and .png beside)"
    ),
) -> None:
    """Backtrack precision and verification correctness next to raw counts and lengths.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens probe appropriateness -t toy/traces/strong-cot/traces.jsonl \\
        --tags toy/tags/strong-cot.jsonl -o appr.parquet
    """
    from sftlens.probes._analyses import appropriateness_table
    from sftlens.probes._plots import plot_appropriateness

    table = appropriateness_table(traces, tags, out)
    plot_appropriateness(table, out.with_suffix(".png"))
    piv = table.pivot_table(index=["model", "step", "task"], columns="metric", values="value")
    typer.echo(piv.round(3).to_string())


def steer_cmd(
    checkpoint: str = typer.Argument(..., help="checkpoint dir to steer"),
    directions: Path = typer.Option(
        ..., "--directions", help="directions.safetensors (or its folder)"
    ),
    layer: int = typer.Option(..., help="decoder layer to steer (see the dead-end table)"),
    alphas: str = typer.Option("-2,-1,0,1,2", help="strengths, in class-mean separations"),
    n_problems: int = typer.Option(50, help="Countdown eval problems"),
    max_new_tokens: int = typer.Option(256, help="generation budget"),
    device: str = typer.Option("cpu", help="torch device"),
    seed: int = typer.Option(0, help="problem seed"),
    problems: Path | None = typer.Option(
        None,
        "--problems",
        help="Countdown problems JSONL to steer on (e.g. a sweep's problems.jsonl); its first "
        "--n-problems countdown lines, instead of default-knob problems",
    ),
    eval_set: str | None = typer.Option(
        None, "--eval-set", help="with --problems: keep lines of this eval_set (e.g. in_domain)"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="output table (.parquet; .csv beside)"),
) -> None:
    """Add or subtract the dead-end direction while generating; measure backtracking and accuracy.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens probe dead-end -m strong=toy/models/strong-cot -o probes \\
        --n-problems 24 --steps 3

      sftlens probe steer toy/models/strong-cot/checkpoints/step-000003 \\
        --directions probes/strong/step-000003 --layer 1 -o steer.parquet \\
        --n-problems 4 --max-new-tokens 32

      sftlens probe steer toy/models/strong-cot/checkpoints/step-000003 \\
        --directions probes/strong/step-000003 --layer 1 -o steer2.parquet \\
        --problems toy/traces/strong-cot/problems.jsonl --eval-set in_domain \\
        --n-problems 4 --max-new-tokens 32 --alphas=-1,0,1
    """
    from sftlens.probes._steer import causal_check

    chosen = None
    if eval_set is not None and problems is None:
        from sftlens.core import ConfigError

        raise ConfigError("--eval-set selects lines of a --problems file; pass --problems too.")
    if problems is not None:
        from sftlens.core import DataError, read_jsonl

        chosen = [
            r
            for r in read_jsonl(problems, required=("id", "task", "prompt", "meta"))
            if r["task"] == "countdown" and (eval_set is None or r.get("eval_set") == eval_set)
        ][:n_problems]
        if not chosen:
            raise DataError(
                f"{problems}: no countdown problems"
                + (f" with eval_set {eval_set!r}" if eval_set else "")
                + "; point --problems at a Countdown problems file."
            )
    table = causal_check(
        checkpoint, directions, layer, _floats(alphas), problems=chosen, n_problems=n_problems,
        seed=seed, max_new_tokens=max_new_tokens, device=device, out=out,
    )  # fmt: skip
    typer.echo(
        table.pivot_table(index="alpha", columns="metric", values="value").round(3).to_string()
    )


def drift_cmd(
    model: list[str] = typer.Option([], "--model", "-m", help="NAME=RUN_DIR (repeatable)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    base: str | None = typer.Option(
        None, help="base model dir (default: each run's first checkpoint)"
    ),
    n_problems: int = typer.Option(100, help="Countdown eval problems (the shared inputs)"),
    layers: str | None = typer.Option(None, help="comma-separated layers (default: all)"),
    device: str = typer.Option("cpu", help="torch device"),
    set_: list[str] = typer.Option(
        [], "--set", help="probe config override key=value, e.g. knobs.max_number=13"
    ),
) -> None:
    """Linear CKA per layer between each checkpoint and its base, on the same inputs.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens probe drift -m strong=toy/models/strong-cot -o drift --n-problems 8

      sftlens probe drift -m strong=toy/models/strong-cot -o drift2 \\
        --n-problems 8 --set knobs.max_number=13 --set knobs.ops=+-*
    """
    from sftlens.probes._analyses import cka_drift
    from sftlens.probes._plots import plot_drift

    cfg = _config(None, set_, n_problems=n_problems, layers=_ints(layers), device=device)
    table = cka_drift(_models(model), out, cfg, base=base)
    plot_drift(table, out / "drift.png")
    typer.echo(
        table.pivot_table(index=["model", "step"], columns="layer", values="value")
        .round(3)
        .to_string()
    )


def register(app: typer.Typer) -> None:
    """Add ``sftlens probe ...`` to the app."""
    probe_app.command("cache")(cache_cmd)
    probe_app.command("fit")(fit_cmd)
    probe_app.command("dead-end")(dead_end_cmd)
    probe_app.command("appropriateness")(appropriateness_cmd)
    probe_app.command("steer")(steer_cmd)
    probe_app.command("drift")(drift_cmd)
    app.add_typer(probe_app, name="probe")
