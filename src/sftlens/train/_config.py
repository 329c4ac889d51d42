"""The training config: one YAML per run, validated on load, saved into the run folder."""

from __future__ import annotations

import dataclasses
from typing import Literal

from sftlens.core import Config, ConfigError, option

__all__ = ["GridConfig", "ScheduleConfig", "TrainConfig", "TRACKERS"]

TRACKERS = ("tensorboard", "wandb", "mlflow")


@dataclasses.dataclass
class ScheduleConfig(Config):
    """Learning-rate schedule: warmup then constant, cosine or linear decay."""

    kind: Literal["constant", "cosine", "linear"] = option("cosine", "LR shape after warmup.")
    warmup_frac: float = option(0.05, "Fraction of the optimizer steps spent warming up (0..1).")
    min_lr_frac: float = option(0.1, "Floor of cosine/linear decay, as a fraction of lr.")

    def validate(self) -> None:
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ConfigError(f"schedule.warmup_frac: {self.warmup_frac} must be in [0, 1).")
        if not 0.0 <= self.min_lr_frac <= 1.0:
            raise ConfigError(f"schedule.min_lr_frac: {self.min_lr_frac} must be in [0, 1].")


@dataclasses.dataclass
class GridConfig(Config):
    """Which optimizer steps get a checkpoint (step 0 and the last step always do)."""

    kind: Literal["log2", "every", "list"] = option(
        "log2", "log2: start, 2*start, 4*start, ...; every: each N steps; list: `steps`."
    )
    start: int = option(10, "First checkpoint step of the log2 grid.")
    every: int | None = option(None, "Interval for kind=every.")
    steps: list[int] = option(help="Explicit steps for kind=list.", factory=list)

    def validate(self) -> None:
        if self.kind == "every" and (self.every is None or self.every < 1):
            raise ConfigError("grid.every: set a positive interval when grid.kind is 'every'.")
        if self.kind == "list" and not self.steps:
            raise ConfigError("grid.steps: list the checkpoint steps when grid.kind is 'list'.")
        if self.kind != "list" and self.steps:
            raise ConfigError(
                f"grid.steps is set but grid.kind is {self.kind!r}; set grid.kind=list to use it."
            )
        if self.kind == "log2" and self.start < 1:
            raise ConfigError(f"grid.start: {self.start} must be at least 1.")


@dataclasses.dataclass
class TrainConfig(Config):
    """One training run: objective, model, data, schedule, checkpoint grid and logging.

    Example YAML::

        objective: sft
        model: runs/base/checkpoints/step-000400   # or toy-strong, or an HF id
        data: data/countdown_cot.jsonl
        out_dir: runs/sft-strong
        max_steps: 200
        batch_size: 16
        lr: 1.0e-3
        schedule: {kind: cosine, warmup_frac: 0.05}
        grid: {kind: log2, start: 10}
    """

    objective: Literal["pretrain", "sft"] = option(
        "sft", "pretrain: loss on every token; sft: loss on response tokens only."
    )
    model: str = option(
        "toy-strong", "Toy zoo name (see `sftlens train --list-models`), HF id or local path."
    )
    tokenizer: str | None = option(
        None,
        "Tokenizer dir/id. Default: the model's own; for a toy model under pretrain, a BPE "
        "tokenizer is built from the training text.",
    )
    vocab_size: int = option(1024, "Vocabulary size of a tokenizer built from the data.")
    data: str = option("", "Training data: JSONL/JSON/parquet (SFT records, or `text` records).")
    text_field: str = option("text", "Field holding the document text for pretrain data.")
    out_dir: str = option("runs/train", "Run folder: checkpoints/, metrics.jsonl, config.")
    seed: int = option(0, "Seed for model init, data order, subset choice and dropout.")
    max_steps: int | None = option(None, "Number of optimizer steps (set this or epochs).")
    epochs: int | None = option(None, "Number of passes over the data (set this or max_steps).")
    subset_size: int | None = option(
        None, "Train on a seeded subset of this many examples (repeated exposure)."
    )
    batch_size: int = option(16, "Examples (or packed rows) per device per micro-batch.")
    grad_accum: int = option(1, "Micro-batches per optimizer step on each device.")
    lr: float = option(1e-3, "Peak learning rate (AdamW).")
    betas: list[float] = option(help="AdamW betas.", factory=lambda: [0.9, 0.95])
    weight_decay: float = option(0.0, "AdamW weight decay on matrices (not norms/biases).")
    max_grad_norm: float | None = option(1.0, "Gradient clipping norm (null: no clipping).")
    schedule: ScheduleConfig = option(help="LR schedule.", factory=ScheduleConfig)
    max_length: int = option(512, "Tokens per example (or packed row); longer examples cut.")
    too_long: Literal["truncate", "drop", "error"] = option(
        "truncate", "What to do with an example longer than max_length."
    )
    packing: bool = option(
        False, "Pack several examples per row (positions reset; they never attend each other)."
    )
    group_by_length: bool = option(True, "Put examples of similar length in the same batch.")
    shuffle: Literal["fixed", "per_epoch"] = option(
        "per_epoch", "Data order: one seeded order for all epochs, or reshuffled per epoch."
    )
    grid: GridConfig = option(help="Checkpoint grid.", factory=GridConfig)
    keep_training_state: Literal["last", "all"] = option(
        "last", "Keep optimizer state (for resume) in the last checkpoint only, or in all."
    )
    dtype: Literal["auto", "float32", "bfloat16"] = option(
        "auto", "auto: bf16 mixed precision where the GPU supports it, else float32."
    )
    gradient_checkpointing: bool = option(False, "Recompute activations to save memory.")
    attn_implementation: str = option("sdpa", "Attention kernel for HF models (sdpa, eager).")
    trust_remote_code: bool = option(False, "Allow model code from the hub (only if trusted).")
    log_every: int = option(10, "Write a metrics line every N optimizer steps.")
    trackers: list[str] = option(
        help="Extra loggers: tensorboard, wandb, mlflow (when installed).", factory=list
    )
    run_name: str | None = option(None, "Run name for trackers (default: out_dir's name).")
    progress: bool = option(True, "Show a progress bar (loss, tokens/s, ETA).")
    resume: bool = option(
        False,
        "Continue the run in out_dir even without its saved config (a rerun with the same "
        "config always continues from the latest complete checkpoint).",
    )

    def validate(self) -> None:
        if (self.max_steps is None) == (self.epochs is None):
            raise ConfigError(
                "set exactly one of max_steps and epochs "
                f"(got max_steps={self.max_steps}, epochs={self.epochs})."
            )
        for name in ("max_steps", "epochs", "subset_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name}: {v} must be at least 1.")
        for name in ("batch_size", "grad_accum", "max_length", "log_every", "vocab_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: {getattr(self, name)} must be at least 1.")
        if self.lr <= 0:
            raise ConfigError(f"lr: {self.lr} must be positive.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay: {self.weight_decay} must be non-negative.")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(f"max_grad_norm: {self.max_grad_norm} must be positive (or null).")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas: {self.betas} must be two numbers in [0, 1).")
        if not self.data:
            raise ConfigError("data: set the training data file (JSONL, JSON or parquet).")
        for t in self.trackers:
            if t not in TRACKERS:
                raise ConfigError(f"trackers: {t!r} is unknown; use {', '.join(TRACKERS)}.")
        if self.max_steps is not None and self.grid.kind == "list":
            late = [s for s in self.grid.steps if s > self.max_steps or s < 0]
            if late:
                raise ConfigError(
                    f"grid.steps: {late[0]} is outside 0..max_steps={self.max_steps}; "
                    "lower it or raise max_steps."
                )
