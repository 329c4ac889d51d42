"""Train a checkpoint grid: pretraining of toy bases and SFT with response-only loss.

A plain accelerate loop (`train`), a typed config (`TrainConfig`), the toy model zoo
(`TOY_MODELS`, `build_toy_model`), HF model loading, and the schedules a study varies
(`checkpoint_grid`, `fixed_budget_schedules`).
"""

from sftlens.train._config import GridConfig, ScheduleConfig, TrainConfig
from sftlens.train._data import IGNORE, collate, epoch_batches, load_units, pack, tokenize_sft
from sftlens.train._loop import CRASH_ENV, train
from sftlens.train._models import (
    TOY_MODELS,
    build_toy_model,
    count_parameters,
    load_model_and_tokenizer,
)
from sftlens.train._schedule import checkpoint_grid, fixed_budget_schedules, lr_at
from sftlens.train._state import CONFIG_FILE, METRICS_FILE, TRAINING_STATE_DIR

__all__ = [
    "CONFIG_FILE",
    "CRASH_ENV",
    "IGNORE",
    "METRICS_FILE",
    "TOY_MODELS",
    "TRAINING_STATE_DIR",
    "GridConfig",
    "ScheduleConfig",
    "TrainConfig",
    "build_toy_model",
    "checkpoint_grid",
    "collate",
    "count_parameters",
    "epoch_batches",
    "fixed_budget_schedules",
    "load_model_and_tokenizer",
    "load_units",
    "lr_at",
    "pack",
    "tokenize_sft",
    "train",
]
