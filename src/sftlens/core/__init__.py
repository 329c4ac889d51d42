"""Shared foundations: errors, atomic IO, typed configs, registries, manifests.

Imports nothing else of sftlens, so every stage (and the tagger on any text) may depend on it.
"""

from sftlens.core._bounded import loads_json, loads_yaml
from sftlens.core._checkpoints import (
    CHECKPOINTS_DIR,
    TRAINER_STATE,
    Checkpoint,
    check_model_dir,
    check_safetensors,
    checkpoint_dirname,
    find_checkpoints,
    load_causal_lm,
    load_tokenizer,
    read_checkpoint,
)
from sftlens.core._config import Config, option, parse_overrides
from sftlens.core._errors import (
    EXIT_USAGE,
    ConfigError,
    DataError,
    SftlensError,
    SftlensWarning,
    warn,
)
from sftlens.core._interrupt import (
    INTERRUPT_ENV,
    INTERRUPT_POINTS,
    enable_ctrl_c,
    interrupt_point,
)
from sftlens.core._io import (
    append_jsonl,
    atomic_dir,
    atomic_path,
    check_columns,
    check_input,
    check_output,
    check_types,
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
from sftlens.core._options import out_dir, out_file
from sftlens.core._plots import plot_lines, save_figure
from sftlens.core._registry import Registry
from sftlens.core._resolve import (
    Series,
    is_model_dir,
    materialize,
    resolve_one,
    resolve_series,
    step_from_name,
)
from sftlens.core._resume import finish_resumable, input_record, start_resumable
from sftlens.core._rows import get_path, read_rows
from sftlens.core._shard import parse_shard, shard_block, shard_dir, shard_file
from sftlens.core._stats import auroc, bootstrap_ci, bootstrap_indices, percentile_ci, seeded_rng
from sftlens.core._traces import (
    TRACE_FIELDS,
    TRACE_FORMATS,
    ImportedTraces,
    detect_trace_format,
    read_traces,
)
from sftlens.core._where import parse_where, where_mask

__all__ = [
    "CHECKPOINTS_DIR",
    "EXIT_USAGE",
    "INTERRUPT_ENV",
    "INTERRUPT_POINTS",
    "TRACE_FIELDS",
    "TRACE_FORMATS",
    "TRAINER_STATE",
    "Checkpoint",
    "Config",
    "ConfigError",
    "DataError",
    "ImportedTraces",
    "Registry",
    "Series",
    "SftlensError",
    "SftlensWarning",
    "append_jsonl",
    "atomic_dir",
    "atomic_path",
    "auroc",
    "bootstrap_ci",
    "bootstrap_indices",
    "check_columns",
    "check_input",
    "check_model_dir",
    "check_output",
    "check_safetensors",
    "check_types",
    "checkpoint_dirname",
    "detect_trace_format",
    "enable_ctrl_c",
    "environment",
    "file_sha256",
    "find_checkpoints",
    "fingerprint",
    "finish_resumable",
    "get_path",
    "input_record",
    "interrupt_point",
    "is_model_dir",
    "load_causal_lm",
    "load_tokenizer",
    "loads_json",
    "loads_yaml",
    "materialize",
    "option",
    "out_dir",
    "out_file",
    "package_versions",
    "parse_overrides",
    "parse_shard",
    "parse_where",
    "path_fingerprint",
    "percentile_ci",
    "plot_lines",
    "read_checkpoint",
    "read_json",
    "read_jsonl",
    "read_parquet",
    "read_rows",
    "read_traces",
    "read_yaml",
    "resolve_one",
    "resolve_series",
    "save_figure",
    "seed_everything",
    "seeded_rng",
    "shard_block",
    "shard_dir",
    "shard_file",
    "start_resumable",
    "step_from_name",
    "warn",
    "where_mask",
    "write_json",
    "write_jsonl",
    "write_parquet",
    "write_text",
]
