"""CLI verbs of the probe stage: ``sftlens probe cache|fit|dead-end|appropriateness|steer|drift``."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import ConfigError

probe_app = typer.Typer(
    help=(
        "Probe activations: procedure or surface? Cache hooks at chosen positions, fit probes "
        "with grouped CV and controls, and run the dead-end, appropriateness, steering and "
        "drift analyses.\n\nExample:\n\n  sftlens probe dead-end -m strong=runs/toy/models/strong "
        "-m weak=runs/toy/models/weak -o runs/toy/probes"
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


@probe_app.command("cache")
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

      sftlens data countdown --n 200 --style cot --out cd.jsonl

      sftlens probe cache runs/toy/models/strong/checkpoints/step-000400 -d cd.jsonl -o cache/
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


@probe_app.command("fit")
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

      sftlens probe fit cache/ --label dead_end --where "position_kind == 'step_end'" -o fit.parquet
    """
    from sftlens.core import write_parquet
    from sftlens.probes._cache import ActivationCache
    from sftlens.probes._fit import fit_probes

    cache = ActivationCache(cache_dir)
    table = fit_probes(cache, label=label, where=where, n_splits=n_splits, seed=seed)
    write_parquet(table, out)
    table.to_csv(out.with_suffix(".csv"), index=False)
    best = table[(table["probe"] == "logreg") & (table["metric"] == "auroc")]
    typer.echo(best[["hook", "value"]].to_string(index=False))


@probe_app.command("dead-end")
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
    <out>/<model>/step-NNNNNN/ (cache, probe.parquet, directions.safetensors, lens.json);
    the matched design (dead and live states paired on what a surface reader sees) in
    <out>/dead_end_matched.parquet/.csv, and with two models (strong first)
    <out>/strong_vs_weak.parquet/.csv: the selectivity difference and the verdict.

    Example:

      sftlens probe dead-end -m strong=runs/toy/models/strong -m weak=runs/toy/models/weak -o probes/

      sftlens probe dead-end -m strong=RUN_A -m weak=RUN_B -o probes/ --n-problems 560 --set caliper=0.5
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
    _echo_matched(out)
    typer.echo(f"-> {out / 'dead_end.parquet'}, {png}")


def _echo_matched(out: Path) -> None:
    """The matched design per checkpoint (best layer), and strong vs weak when written."""
    import pandas as pd

    from sftlens.probes._analyses import COMPARISON_TABLE, MATCHED_TABLE

    if not (out / MATCHED_TABLE).is_file():
        return
    mt = pd.read_parquet(out / MATCHED_TABLE)
    mt = mt[mt["position_kind"] == mt["position_kind"].iloc[0]]
    lines = []
    for (model, step, design), g in mt.groupby(["model", "step", "design"], sort=True):
        sel = g[(g["probe"] == "logreg") & (g["metric"] == "selectivity")]
        surf = g[(g["probe"] == "surface") & (g["metric"] == "auroc")]
        if sel.empty or surf.empty:
            continue
        b = sel.loc[sel["value"].idxmax()]
        lines.append(
            f"{model} step {step} {design}: {int(b['n'])} states, {int(b['n_pairs'])} pairs; "
            f"surface AUROC {surf['value'].iloc[0]:.3f}; best selectivity {b['value']:+.3f} "
            f"[{b['lo']:+.3f}, {b['hi']:+.3f}] at layer {int(b['layer'])}"
        )
    typer.echo("\n".join(lines))
    if (out / COMPARISON_TABLE).is_file():
        for _, r in pd.read_parquet(out / COMPARISON_TABLE).iterrows():
            typer.echo(f"step {int(r['step'])}: {r['text']}")


@probe_app.command("appropriateness")
def appropriateness_cmd(
    traces: Path = typer.Option(..., "--traces", "-t", help="traces JSONL from `sftlens generate`"),
    tags: Path = typer.Option(..., "--tags", help="tags JSONL from `sftlens tag` (same ids)"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="output table (.parquet; .csv and .png beside)"
    ),
) -> None:
    """Backtrack precision and verification correctness next to raw counts and lengths.

    Example:

      sftlens probe appropriateness -t runs/toy/traces/traces.jsonl --tags runs/toy/tags/tags.jsonl -o appr.parquet
    """
    from sftlens.probes._analyses import appropriateness_table
    from sftlens.probes._plots import plot_appropriateness

    table = appropriateness_table(traces, tags, out)
    plot_appropriateness(table, out.with_suffix(".png"))
    piv = table.pivot_table(index=["model", "step", "task"], columns="metric", values="value")
    typer.echo(piv.round(3).to_string())


@probe_app.command("steer")
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

      sftlens probe steer ckpt/ --directions probes/strong/step-000400 --layer 3 -o steer.parquet

      sftlens probe steer ckpt/ --directions DIR --layer 3 --problems traces/problems.jsonl
      --eval-set in_domain -o steer.parquet
    """
    from sftlens.probes._steer import causal_check

    chosen = _steer_problems(problems, eval_set, n_problems)
    table = causal_check(
        checkpoint, directions, layer, _floats(alphas), problems=chosen, n_problems=n_problems,
        seed=seed, max_new_tokens=max_new_tokens, device=device, out=out,
    )  # fmt: skip
    typer.echo(
        table.pivot_table(index="alpha", columns="metric", values="value").round(3).to_string()
    )


def _steer_problems(problems: Path | None, eval_set: str | None, n: int) -> list[dict] | None:
    """The first `n` countdown lines of a problems file (of one eval set), or None."""
    if eval_set is not None and problems is None:
        raise ConfigError("--eval-set selects lines of a --problems file; pass --problems too.")
    if problems is None:
        return None
    from sftlens.core import DataError, read_jsonl

    chosen = [
        r
        for r in read_jsonl(problems, required=("id", "task", "prompt", "meta"))
        if r["task"] == "countdown" and (eval_set is None or r.get("eval_set") == eval_set)
    ][:n]
    if not chosen:
        raise DataError(
            f"{problems}: no countdown problems"
            + (f" with eval_set {eval_set!r}" if eval_set else "")
            + "; point --problems at a Countdown problems file."
        )
    return chosen


@probe_app.command("causal")
def causal_cmd(
    checkpoint: str = typer.Argument(..., help="checkpoint dir to intervene on"),
    directions: Path = typer.Option(
        ..., "--directions", help="directions.safetensors (or its folder)"
    ),
    layer: int = typer.Option(..., help="decoder layer to steer (see the dead-end table)"),
    alphas: str = typer.Option("-2,2", help="steering strengths, in class-mean separations"),
    n_random: int = typer.Option(4, "--random", help="random directions of the same norm"),
    ablate: bool = typer.Option(True, help="also project each direction out everywhere"),
    n_problems: int = typer.Option(50, help="Countdown eval problems"),
    max_new_tokens: int = typer.Option(256, help="generation budget"),
    n_boot: int = typer.Option(1000, help="bootstrap resamples over problems"),
    device: str = typer.Option("cpu", help="torch device"),
    seed: int = typer.Option(0, help="problems, random directions, bootstrap"),
    knob: list[str] = typer.Option(
        [], "--knob", help="Countdown knob key=value for generated problems, e.g. max_number=13"
    ),
    problems: Path | None = typer.Option(None, "--problems", help="Countdown problems JSONL"),
    eval_set: str | None = typer.Option(None, "--eval-set", help="with --problems: one eval_set"),
    out: Path = typer.Option(..., "--out", "-o", help="output table (.parquet; .csv beside)"),
) -> None:
    """Steer/ablate along the dead-end direction and along random directions of its norm.

    Reports backtracks, backtrack precision, tokens before the first backtrack and accuracy,
    each as a change against the unsteered model with 95% intervals over problems, and the
    probe direction's change minus the random directions' (probe_minus_random).

    Example:

      sftlens probe causal ckpt/ --directions probes/strong/step-000560 --layer 3 -o causal.parquet

      sftlens probe causal ckpt/ --directions DIR --layer 1 --knob max_number=13 --knob ops=+-*
      --random 3 -o causal.parquet
    """
    from sftlens.core import parse_overrides
    from sftlens.probes._causal import causal_controls

    table = causal_controls(
        checkpoint, directions, layer, _floats(alphas), n_random=n_random, ablate=ablate,
        problems=_steer_problems(problems, eval_set, n_problems), n_problems=n_problems,
        seed=seed, knobs=parse_overrides(knob), max_new_tokens=max_new_tokens, device=device,
        n_boot=n_boot, out=out,
    )  # fmt: skip
    t = table[table["direction"].isin(["probe", "random_mean", "probe_minus_random"])]
    t = t[t["metric"].isin(["backtracks_per_trace", "backtrack_precision", "accuracy"])]
    cols = ["direction", "intervention", "alpha", "metric", "delta", "delta_lo", "delta_hi"]
    typer.echo(t[cols].round(3).to_string(index=False))


@probe_app.command("drift")
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

      sftlens probe drift -m strong=runs/toy/models/strong -o probes/

      sftlens probe drift -m strong=RUN -o probes/ --set knobs.max_number=13 --set knobs.ops=+-*
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
    app.add_typer(probe_app, name="probe")
