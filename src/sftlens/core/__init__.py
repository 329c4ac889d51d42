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
from sftlens.core._errors import (
    EXIT_USAGE,
    ConfigError,
    DataError,
    SftlensError,
    SftlensWarning,
    warn,
)
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
from sftlens.core._registry import Registry
from sftlens.core._rows import get_path, read_rows
from sftlens.core._traces import (
    TRACE_FIELDS,
    TRACE_FORMATS,
    ImportedTraces,
    detect_trace_format,
    read_traces,
)

__all__ = [
    "CHECKPOINTS_DIR",
    "EXIT_USAGE",
    "TRACE_FIELDS",
    "TRACE_FORMATS",
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
    "ImportedTraces",
    "Registry",
    "SftlensError",
    "SftlensWarning",
    "append_jsonl",
    "atomic_dir",
    "atomic_path",
    "detect_trace_format",
    "environment",
    "file_sha256",
    "fingerprint",
    "get_path",
    "option",
    "package_versions",
    "parse_overrides",
    "path_fingerprint",
    "read_json",
    "read_jsonl",
    "read_parquet",
    "read_rows",
    "read_traces",
    "read_yaml",
    "seed_everything",
    "write_json",
    "write_jsonl",
    "write_parquet",
    "warn",
    "write_text",
]
