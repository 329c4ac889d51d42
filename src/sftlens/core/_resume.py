"""Fingerprints for resumable outputs: only a verb's own unfinished output is ever resumed.

A verb that appends to ``OUT.partial`` and renames it when done first records, beside it, what
the partial is made from (``OUT.partial.json``: input files with their hashes, and the options
that shape the records). A rerun resumes only when that record matches the new run's; otherwise
it stops with one line naming both, instead of mixing two inputs' records into one output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sftlens.core._errors import DataError
from sftlens.core._io import write_json
from sftlens.core._manifest import file_sha256

__all__ = ["finish_resumable", "input_record", "start_resumable"]

FINGERPRINT_SUFFIX = ".json"


def input_record(path: str | os.PathLike) -> dict[str, str]:
    """``{"path", "sha256"}`` of an input file, for a resumable output's fingerprint."""
    p = Path(path)
    return {"path": str(p.resolve()), "sha256": file_sha256(p)}


def _sidecar(partial: Path) -> Path:
    return partial.with_name(partial.name + FINGERPRINT_SUFFIX)


def _describe(record: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(record.items()):
        if isinstance(value, dict) and "sha256" in value:
            parts.append(f"{key}={value.get('path')} (sha256 {str(value['sha256'])[:12]})")
        else:
            parts.append(f"{key}={json.dumps(value, sort_keys=True)}")
    return ", ".join(parts)


def start_resumable(partial: str | os.PathLike, record: dict[str, Any]) -> bool:
    """Check (or record) what an unfinished output is made from, before appending to it.

    Args:
        partial: the unfinished output (``OUT.partial``).
        record: JSON-serialisable description of the inputs and options (use `input_record`
            for files).

    Returns:
        True when `partial` exists and was made from the same record (resume it); False when
        there is nothing to resume (the record is now written beside it).

    Raises:
        DataError: `partial` exists but was made from other inputs or options, or carries no
            record; the message names both and says to delete it or pick another output.
    """
    p = Path(partial)
    side = _sidecar(p)
    if not p.exists():
        write_json(side, record)
        return False
    old: Any = None
    if side.is_file():
        try:
            old = json.loads(side.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            old = None
    want = json.loads(json.dumps(record, sort_keys=True))
    if old == want:
        return True
    made = _describe(old) if isinstance(old, dict) else "unknown inputs (no readable record)"
    raise DataError(
        f"{p}: an unfinished output made from {made}; this run is from {_describe(want)}; "
        f"delete {p} (and {side.name}) or choose another output path."
    )


def finish_resumable(partial: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename the finished `partial` onto `final` and drop its fingerprint record."""
    p = Path(partial)
    os.replace(p, final)
    _sidecar(p).unlink(missing_ok=True)
