"""`sftlens train`: parse a YAML config plus overrides into `TrainConfig` and call `train`."""

from __future__ import annotations

import os

import typer

from sftlens.core import ConfigError
from sftlens.core import out_dir as check_out_dir


def train_cmd(
    config: str = typer.Option(None, "--config", "-c", help="Run config (YAML)."),
    set_: list[str] = typer.Option(
        None, "--set", "-s", help="Override a key: --set lr=3e-4 --set grid.kind=every."
    ),
    out_dir: str = typer.Option(
        None, "--out-dir", "-o", callback=check_out_dir, help="Run folder (overrides out_dir)."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in out_dir even without its saved config (rerunning the "
        "same command always resumes).",
    ),
    list_models: bool = typer.Option(
        False, "--list-models", help="List the toy model zoo and exit."
    ),
    show_config: bool = typer.Option(
        False, "--show-config", help="Print every config key with its help and exit."
    ),
) -> None:
    """Train a model (pretrain or SFT) and write its checkpoint grid.

    Writes <out_dir>/train_config.yaml, metrics.jsonl and checkpoints/step-NNNNNN/
    (HF dirs with tokenizer and trainer_state.json; step 0 is the base).

    Rerunning the same command after a Ctrl-C or crash resumes from the latest checkpoint (a
    different config for the same out_dir is refused).

    Several GPUs or nodes: the same command after `accelerate launch --config_file
    configs/accelerate/fsdp.yaml -m` (DDP, FSDP, DeepSpeed and 2-process CPU configs are in
    configs/accelerate/).

    Example:

      sftlens data base-corpus --n 300 --out data/base.jsonl

      sftlens train -s objective=pretrain -s model=toy-tiny \\
        -s data=data/base.jsonl -s max_steps=4 -o runs/pt

      sftlens train -c runs/pt/train_config.yaml --resume

      sftlens data countdown --n 64 --style cot --out data/cd.jsonl

      sftlens train -s model=runs/pt/checkpoints/step-000004 \\
        -s data=data/cd.jsonl -s max_steps=2 -s batch_size=8 -o runs/sft

      sftlens train --list-models
    """
    from sftlens.train._config import TrainConfig
    from sftlens.train._models import TOY_MODELS

    if list_models:
        for name, spec in TOY_MODELS.items():
            shape = (
                f"{spec['num_hidden_layers']} layers x {spec['hidden_size']} wide, "
                f"{spec['num_attention_heads']} heads"
            )
            typer.echo(f"{name:18s} {shape:32s} {spec['description']}")
        return
    if show_config:
        typer.echo(TrainConfig().describe())  # the defaults, one key a line
        return
    if config is None and not set_:
        raise ConfigError("give a run config: sftlens train --config run.yaml (see --help).")
    overrides = list(set_ or [])
    if out_dir is not None:
        overrides.append(f"out_dir={out_dir}")
    if resume:
        overrides.append("resume=true")
    cfg = TrainConfig.load(config, overrides=overrides)

    from sftlens.train._loop import train

    path = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:  # once, not once per launched process
        typer.echo(f"checkpoints written to {path}/checkpoints")


def register(app: typer.Typer) -> None:
    """Add the ``train`` verb to the CLI."""
    app.command("train")(train_cmd)
