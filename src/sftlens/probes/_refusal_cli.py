"""``sftlens refusal``: refusal directions of every checkpoint, their drift and their effects."""

from __future__ import annotations

from pathlib import Path

import typer

from sftlens.core import out_dir


def refusal(
    run_or_model_dir: str = typer.Argument(
        ..., help="run dir, checkpoint dir, trainer/verl output, hub id (@rev, :subfolder)"
    ),
    out: Path = typer.Option(..., "--out", callback=out_dir, help="output directory"),
    harmful: Path = typer.Option(
        None, "--harmful", help="AdvBench, HarmBench, JailbreakBench, StrongREJECT, XSTest, ..."
    ),
    harmless: Path = typer.Option(
        None, "--harmless", help="Alpaca, XSTest (its safe prompts), or an `instruction` column"
    ),
    config: Path = typer.Option(None, "--config", help="YAML RefusalDirectionConfig"),
    base: str = typer.Option(
        None, "--base", help="base model dir or hub id (default: lowest step)"
    ),
    reference: Path = typer.Option(None, "--reference", help="saved direction to compare to"),
    template: str = typer.Option(
        None, "--template", help="auto | chat | plain | '..{instruction}..'"
    ),
    seed: int = typer.Option(None, "--seed", help="prompt sampling seed"),
    device: str = typer.Option(None, "--device", help="torch device, e.g. cpu or cuda"),
    set_: list[str] = typer.Option(None, "--set", help="config override key=value (repeatable)"),
    shard: str = typer.Option(
        None, "--shard", help="K/N: the base + block K of the checkpoints (join with `merge`)"
    ),
) -> None:
    """Refusal direction of every checkpoint: drift from the base, AUROC, causal effects.

    For each checkpoint found under RUN_OR_MODEL_DIR: difference-in-means directions between
    harmful and harmless instructions (every layer, every post-instruction position), the
    direction selected as in Arditi et al. (2024), its cosine to the base's and to a reference
    direction, the AUROC of its projection on held-out prompts, and refusal rates from greedy
    generations, plain, under directional ablation (harmful prompts) and under activation
    addition (harmless prompts). Without --harmful/--harmless the toy world's prompts are used;
    with them, files as published (CSV, JSON, JSONL, parquet); a file with fewer prompts than
    n_train + n_val + n_eval is split in proportion, with a warning giving the counts used.

    RUN_OR_MODEL_DIR is any reference `sftlens checkpoints` lists (an HF Trainer or verl output
    folder, a PEFT adapter, org/model@step*, ...).

    Writes OUT/directions/step-NNNNNN.safetensors, OUT/refusal.parquet (long format), plots
    with their CSVs, config.yaml and manifest.json. Rerunning skips finished checkpoints.

    Example:

      sftlens run countdown_lab --scale micro --out toy

      sftlens refusal toy/models/strong-cot --out refusal

      sftlens data harmful --n 40 --out harmful.jsonl

      sftlens data harmless --n 40 --out harmless.jsonl

      sftlens refusal toy/models/strong-cot --harmful harmful.jsonl \\
        --harmless harmless.jsonl --out refusal2 --set n_train=16 \\
        --set n_val=8 --set n_eval=8 --set refusal_tokens='[I]'
    """
    from sftlens.core import parse_overrides
    from sftlens.probes._refusal import RefusalDirectionConfig
    from sftlens.probes._refusal_eval import refusal_report

    overrides = parse_overrides(set_)
    for key, value in (
        ("harmful", harmful),
        ("harmless", harmless),
        ("base", base),
        ("reference", reference),
        ("template", template),
        ("seed", seed),
        ("device", device),
    ):
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    cfg = RefusalDirectionConfig.load(config, overrides)
    table = refusal_report(run_or_model_dir, out, cfg, shard=shard)
    steps = sorted({int(s) for s in table["step"].dropna()})
    typer.echo(f"analysed {len(steps) or 1} checkpoint(s); table: {out / 'refusal.parquet'}")
    summary = table[table["metric"].isin(["refusal_rate_harmful", "cosine_to_base", "auroc"])]
    for (model, step), g in summary.groupby(["model", "step"], dropna=False):
        vals = {m: v for m, v in zip(g["metric"], g["value"], strict=True)}
        typer.echo(
            f"  {model} step {step}: refusal rate {vals.get('refusal_rate_harmful', float('nan')):.2f}"
            f"  cosine to base {vals.get('cosine_to_base', float('nan')):.3f}"
            f"  AUROC {vals.get('auroc', float('nan')):.3f}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``refusal`` verb."""
    app.command("refusal")(refusal)
