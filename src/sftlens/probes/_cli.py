"""CLI verbs of the probe stage: ``sftlens probe cache|fit|dead-end|appropriateness|steer|drift``."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import ConfigError, out_dir, out_file
from sftlens.probes._fit_cli import design_line, fit_cmd

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
    """``name=ref`` or ``ref`` (named after the run folder or hub repo) -> ``{name: ref}``.

    A ref is anything `sftlens checkpoints` lists: a run dir, an HF Trainer or verl output
    folder, a PEFT adapter, a hub id with ``@rev``/``:subfolder`` or a pattern.
    """
    if not specs:
        raise ConfigError("no model given; pass --model NAME=RUN_DIR (repeatable).")
    out: dict[str, str] = {}
    for s in specs:
        if "=" in s:
            name, path = s.split("=", 1)
        elif Path(s).exists():
            name, path = Path(s).resolve().name, s
        else:  # a hub id: the repo, without revision or subfolder
            name, path = s.split("@")[0].split(":")[0], s
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
    checkpoint: str = typer.Argument(..., help="checkpoint dir or hub id (@rev, :subfolder)"),
    data: Path | None = typer.Option(
        None, "--data", "-d", help="rendered Countdown examples JSONL (cot, events)"
    ),
    traces: Path | None = typer.Option(
        None, "--traces", help="your own traces, in any format `sftlens import` reads"
    ),
    positions: str = typer.Option(
        "sentences", help="with --traces: sentences | offsets | last-prompt"
    ),
    tags: Path | None = typer.Option(None, "--tags", help="Tags JSONL of --traces (sentences)"),
    offsets_field: str = typer.Option(
        "offsets", help="with --positions offsets: field holding [{start, label...}]"
    ),
    label_field: str | None = typer.Option(
        None, help="per-trace label path copied to column `label`, e.g. score.correct"
    ),
    fmt: str = typer.Option("auto", "--format", help="format of --traces (see `sftlens import`)"),
    out: Path = typer.Option(
        ..., "--out", "-o", callback=out_dir, help="cache directory (resumed if it exists)"
    ),
    hook: str = typer.Option("resid_post", help="hook kind per layer"),
    layers: str | None = typer.Option(None, help="comma-separated layers (default: all)"),
    kinds: str | None = typer.Option(
        None,
        help="position kinds: step_end,pre_next (--data); pre_sentence,sentence_start or "
        "pre_offset,offset (--traces)",
    ),
    batch_size: int = typer.Option(16, help="sequences per forward pass"),
    shard_traces: int = typer.Option(256, help="sequences per shard"),
    device: str = typer.Option("cpu", help="torch device"),
) -> None:
    """Cache hook activations at chosen positions into safetensors shards + parquet index.

    With --data: the toy world's Countdown examples, a position per step event. With
    --traces: your own traces, at every sentence (labelled tag_<label> from --tags, e.g.
    tag_backtracking), at char offsets given in the file, or at the last prompt token; a
    per-trace --label-field (score.correct) becomes column `label`.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens data countdown --n 40 --style cot --split eval --out cd.jsonl

      sftlens probe cache toy/models/strong-cot/checkpoints/step-000003 \\
        -d cd.jsonl -o cache --layers 0,1

      sftlens probe cache toy/models/strong-cot/checkpoints/step-000003 \\
        --traces toy/traces/strong-cot/traces.jsonl \\
        --tags toy/tags/strong-cot.jsonl -o cache-traces --layers 0,1
    """
    from sftlens.core import input_record, read_jsonl, read_traces, resolve_one
    from sftlens.probes._cache import cache_activations
    from sftlens.probes._datasets import dead_end_items
    from sftlens.probes._lens import hook_names, load_lens
    from sftlens.probes._trace_items import (
        POSITION_SOURCES,
        last_prompt_trace_items,
        offset_items,
        sentence_items,
    )

    if (data is None) == (traces is None):
        raise ConfigError("give --data (Countdown examples) or --traces (your own), not both.")
    if positions not in POSITION_SOURCES:
        raise ConfigError(f"--positions {positions!r}: use one of {', '.join(POSITION_SOURCES)}.")
    kind_list = [k for k in (kinds or "").split(",") if k]
    # The reference is checked (nothing fetched), then the whole input file is read: a bad
    # line fails before any model is loaded or shard written.
    resolve_one(checkpoint, fetch=False)
    if data is not None:
        examples = list(read_jsonl(data, required=("id", "prompt", "response", "events")))
    if traces is not None:
        records = read_traces(traces, fmt).records
        if positions == "sentences" and tags is None:
            raise ConfigError("--positions sentences needs --tags (run `sftlens tag` first).")
        tag_map = {t["id"]: t for t in read_jsonl(tags, required=("id", "spans"))} if tags else {}
    lens, tok, info = load_lens(
        resolve_one(checkpoint, log=lambda m: typer.echo(m, err=True)).path, device=device
    )
    hooks = hook_names(hook, _ints(layers) or range(info.n_layers))
    if data is not None:
        items = dead_end_items(tok, examples, kinds=kind_list or ["step_end", "pre_next"])
    elif positions == "sentences":
        from sftlens.trace_tagger import LABELS

        items = sentence_items(tok, records, tag_map, LABELS, kinds=kind_list or
                               ["pre_sentence", "sentence_start"], label_field=label_field)  # fmt: skip
    elif positions == "offsets":
        items = offset_items(tok, records, offsets_field, kinds=kind_list or
                             ["pre_offset", "offset"], label_field=label_field)  # fmt: skip
    else:
        items = last_prompt_trace_items(tok, records, label_field=label_field)
    cache = cache_activations(
        lens,
        items,
        hooks,
        out,
        batch_size=batch_size,
        shard_traces=shard_traces,
        # The data's hash: a cache is resumed only from the same examples.
        meta={**info.to_dict(), "data": input_record(data if data is not None else traces)},
    )
    s = cache.stats
    typer.echo(
        f"cached {s.n_rows} rows from {s.n_traces} traces ({s.n_traces_skipped} already done) "
        f"x {len(hooks)} hooks -> {out}"
    )
    if s.n_truncated:
        typer.echo(
            f"truncated {s.n_truncated} traces to the model's {lens.cfg.n_ctx}-token context "
            f"({s.n_positions_dropped} positions past it dropped)",
            err=True,
        )


def dead_end_cmd(
    model: list[str] = typer.Option(
        [], "--model", "-m", help="NAME=RUN_DIR, checkpoint series or hub id (repeatable)"
    ),
    out: Path = typer.Option(..., "--out", "-o", callback=out_dir, help="output folder"),
    config: Path | None = typer.Option(None, help="YAML ProbeConfig"),
    n_problems: int | None = typer.Option(None, help="Countdown eval problems"),
    layers: str | None = typer.Option(None, help="comma-separated layers (default: all)"),
    steps: str | None = typer.Option(None, help="comma-separated checkpoint steps (default: all)"),
    device: str | None = typer.Option(None, help="torch device"),
    seed: int | None = typer.Option(None, help="problem and fold seed"),
    set_: list[str] = typer.Option([], "--set", help="config override key=value"),
    shard: str | None = typer.Option(None, help="K/N: block K of the checkpoints (see `merge`)"),
) -> None:
    """Is "this state is a dead end" decodable at each layer before the backtrack is written?

    Writes <out>/dead_end.parquet/.csv, <out>/dead_end_auroc.png/.csv and per checkpoint
    <out>/<model>/step-NNNNNN/ (cache, probe.parquet, directions.safetensors, lens.json);
    the matched design (dead and live states paired on what a surface reader sees) in
    <out>/dead_end_matched.parquet/.csv, and with two models (strong first)
    <out>/strong_vs_weak.parquet/.csv: the selectivity difference and the verdict.

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
    table = dead_end_probe(_models(model), out, cfg, shard=shard)
    if shard:
        typer.echo(f"shard {shard} done; join the shards with: sftlens merge {out}")
        return
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
    lines = [
        design_line(f"{model} step {step} {design}", g)
        for (model, step, design), g in mt.groupby(["model", "step", "design"], sort=True)
    ]
    typer.echo("\n".join(lines))
    if (out / COMPARISON_TABLE).is_file():
        for _, r in pd.read_parquet(out / COMPARISON_TABLE).iterrows():
            typer.echo(f"step {int(r['step'])}: {r['text']}")


def appropriateness_cmd(
    traces: Path = typer.Option(..., "--traces", "-t", help="traces JSONL from `sftlens generate`"),
    tags: Path = typer.Option(..., "--tags", help="tags JSONL from `sftlens tag` (same ids)"),
    out: Path = typer.Option(
        ..., "--out", "-o", callback=out_file, help="output table (.parquet; .csv and .png beside)"
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
    checkpoint: str = typer.Argument(..., help="checkpoint dir or hub id to steer"),
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
    out: Path = typer.Option(
        ..., "--out", "-o", callback=out_file, help="output table (.parquet; .csv beside)"
    ),
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

    for name, value in (("--n-problems", n_problems), ("--max-new-tokens", max_new_tokens)):
        if value < 1:
            raise ConfigError(f"{name} {value}: use 1 or more.")
    chosen = _steer_problems(problems, eval_set, n_problems)
    from sftlens.core import resolve_one

    table = causal_check(
        resolve_one(checkpoint).path, directions, layer, _floats(alphas), problems=chosen, n_problems=n_problems,
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
    out: Path = typer.Option(
        ..., "--out", "-o", callback=out_file, help="output table (.parquet; .csv beside)"
    ),
) -> None:
    """Steer/ablate along the dead-end direction and along random directions of its norm.

    Reports backtracks, backtrack precision, tokens before the first backtrack and accuracy,
    each as a change against the unsteered model with 95% intervals over problems, and the
    probe direction's change minus the random directions' (probe_minus_random).

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens probe dead-end -m strong=toy/models/strong-cot -o probes \\
        --n-problems 24 --steps 3

      sftlens probe causal toy/models/strong-cot/checkpoints/step-000003 \\
        --directions probes/strong/step-000003 --layer 0 --random 1 \\
        --n-problems 4 --max-new-tokens 24 -o causal.parquet
    """
    from sftlens.core import parse_overrides, resolve_one
    from sftlens.probes._causal import causal_controls

    table = causal_controls(
        resolve_one(checkpoint).path, directions, layer, _floats(alphas), n_random=n_random, ablate=ablate,
        problems=_steer_problems(problems, eval_set, n_problems), n_problems=n_problems,
        seed=seed, knobs=parse_overrides(knob), max_new_tokens=max_new_tokens, device=device,
        n_boot=n_boot, out=out,
    )  # fmt: skip
    t = table[table["direction"].isin(["probe", "random_mean", "probe_minus_random"])]
    t = t[t["metric"].isin(["backtracks_per_trace", "backtrack_precision", "accuracy"])]
    cols = ["direction", "intervention", "alpha", "metric", "delta", "delta_lo", "delta_hi"]
    typer.echo(t[cols].round(3).to_string(index=False))


def drift_cmd(
    model: list[str] = typer.Option(
        [], "--model", "-m", help="NAME=RUN_DIR, checkpoint series or hub id (repeatable)"
    ),
    out: Path = typer.Option(..., "--out", "-o", callback=out_dir, help="output folder"),
    base: str | None = typer.Option(
        None, help="base model dir or hub id (default: each run's first checkpoint)"
    ),
    n_problems: int = typer.Option(100, help="Countdown eval problems (the shared inputs)"),
    layers: str | None = typer.Option(None, help="comma-separated layers (default: all)"),
    device: str = typer.Option("cpu", help="torch device"),
    set_: list[str] = typer.Option(
        [], "--set", help="probe config override key=value, e.g. knobs.max_number=13"
    ),
    shard: str | None = typer.Option(None, help="K/N: block K of the checkpoints (see `merge`)"),
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
    table = cka_drift(_models(model), out, cfg, base=base, shard=shard)
    if shard:
        typer.echo(f"shard {shard} done; join the shards with: sftlens merge {out}")
        return
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
    probe_app.command("causal")(causal_cmd)
    probe_app.command("drift")(drift_cmd)
    app.add_typer(probe_app, name="probe")
