"""Shared foundations: errors, atomic IO, typed configs, registries, manifests.

Imports nothing else of sftlens, so every stage (and the tagger on any text) may depend on it.
"""

from sftlens.core._checkpoints import (
    CHECKPOINTS_DIR,
    TRAINER_STATE,
    Checkpoint,
    checkpoint_dirname,
    find_checkpoints,
    load_causal_lm,
    load_tokenizer,
    read_checkpoint,
)
from sftlens.core._config import Config, option, parse_overrides
from sftlens.core._errors import EXIT_USAGE, ConfigError, DataError, SftlensError
from sftlens.core._io import (
    append_jsonl,
    atomic_dir,
    atomic_path,
    read_json,
    read_jsonl,
    read_parquet,
    read_yaml,
    write_json,
    write_jsonl,
    write_parquet,
    write_text,
)
from sftlens.core._manifest import (
    environment,
    file_sha256,
    fingerprint,
    package_versions,
    path_fingerprint,
    seed_everything,
)
from sftlens.core._plots import plot_lines, save_figure
from sftlens.core._registry import Registry
from sftlens.core._stats import auroc, bootstrap_ci, bootstrap_indices, percentile_ci, seeded_rng

__all__ = [
    "CHECKPOINTS_DIR",
    "EXIT_USAGE",
    "TRAINER_STATE",
    "Checkpoint",
    "checkpoint_dirname",
    "find_checkpoints",
    "load_causal_lm",
    "load_tokenizer",
    "read_checkpoint",
    "Config",
    "ConfigError",
    "DataError",
    "Registry",
    "SftlensError",
    "append_jsonl",
    "atomic_dir",
    "atomic_path",
    "auroc",
    "bootstrap_ci",
    "bootstrap_indices",
    "environment",
    "file_sha256",
    "fingerprint",
    "option",
    "package_versions",
    "parse_overrides",
    "path_fingerprint",
    "percentile_ci",
    "plot_lines",
    "read_json",
    "read_jsonl",
    "read_parquet",
    "read_yaml",
    "save_figure",
    "seed_everything",
    "seeded_rng",
    "write_json",
    "write_jsonl",
    "write_parquet",
    "write_text",
]
