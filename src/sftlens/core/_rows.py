"""Records from any table file (JSONL, JSON, CSV, parquet) and field paths into them.

`read_rows` names every record's file and line (or row) for error messages; `get_path` reads
``messages[-1].content``-style paths, so users can point at a field without reshaping files.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftlens.core._errors import ConfigError, DataError
from sftlens.core._io import read_json, read_jsonl, read_parquet

__all__ = ["get_path", "parse_path", "read_rows"]

_PATH_TOKEN = re.compile(r"\[(-?\d+)\]|([^.\[\]]+)")


# --------------------------------------------------------------------------- field paths


def parse_path(path: str) -> list[str | int]:
    """``messages[-1].content`` -> ``["messages", -1, "content"]``; a bad path is a ConfigError."""
    parts: list[str | int] = []
    pos = 0
    for m in _PATH_TOKEN.finditer(path):
        gap = path[pos : m.start()]
        if gap not in ("", "."):
            break
        parts.append(int(m.group(1)) if m.group(1) is not None else m.group(2))
        pos = m.end()
    if not parts or pos != len(path):
        raise ConfigError(
            f"field path {path!r} is not valid; use keys and indices like 'messages[-1].content'."
        )
    return parts


_MISSING = object()


def get_path(record: Any, path: str, default: Any = _MISSING) -> Any:
    """The value at `path` (``a.b[0].c``; negative indices count from the end).

    Raises:
        KeyError: a key or index on the path is absent and no `default` was given (the message
            names the first part that is missing).
    """
    cur = record
    for part in parse_path(path):
        if isinstance(part, str) and isinstance(cur, list) and part.lstrip("-").isdigit():
            part = int(part)  # messages.1.content reads like messages[1].content
        in_list = isinstance(part, int) and isinstance(cur, list) and -len(cur) <= part < len(cur)
        if in_list or (isinstance(part, str) and isinstance(cur, dict) and part in cur):
            cur = cur[part]
        else:
            if default is not _MISSING:
                return default
            raise KeyError(part)
    return cur


# --------------------------------------------------------------------------- rows


def read_rows(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, record)`` for every record of a JSONL, JSON, CSV or parquet file.

    `where` names the record for error messages (``file:line`` or ``file: row N``).

    Raises:
        DataError: a missing file, an unknown extension, a malformed line or row.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; check the path.")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        # read_jsonl names the line of a malformed record; count lines to name good ones too.
        lines = _line_numbers(p)
        for k, rec in enumerate(read_jsonl(p)):
            yield f"{p}:{lines[k]}", rec
    elif suffix == ".json":
        data = read_json(p)
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise DataError(f"{p}: expected a JSON list of records (or an object holding one).")
            data = lists[0]
        if not isinstance(data, list):
            raise DataError(f"{p}: expected a JSON list of records, got {type(data).__name__}.")
        for k, rec in enumerate(data):
            if not isinstance(rec, dict):
                raise DataError(f"{p}: record {k + 1} is {type(rec).__name__}, not an object.")
            yield f"{p}: record {k + 1}", rec
    elif suffix in (".csv", ".tsv"):
        try:
            with open(p, encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
                for rec in reader:
                    if None in rec:
                        raise DataError(
                            f"{p}:{reader.line_num}: more cells than header columns; quote "
                            "cells that contain the delimiter."
                        )
                    yield f"{p}:{reader.line_num}", dict(rec)
        except UnicodeDecodeError:
            raise DataError(f"{p}: not UTF-8 text; save it as UTF-8.") from None
        except csv.Error as e:
            raise DataError(f"{p}: not a readable CSV file ({e}).") from None
    elif suffix in (".parquet", ".pq"):
        df = read_parquet(p)
        for k, rec in enumerate(df.to_dict("records")):
            yield f"{p}: row {k + 1}", {key: _plain(v) for key, v in rec.items()}
    else:
        raise DataError(f"{p}: unknown file type {suffix!r}; use .jsonl, .json, .csv or .parquet.")


def _line_numbers(p: Path) -> list[int]:
    with open(p, "rb") as f:
        return [n for n, raw in enumerate(f, start=1) if raw.strip()]


def _plain(v: Any) -> Any:
    """numpy scalars and arrays (from parquet) as plain Python values; NaN as None."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
