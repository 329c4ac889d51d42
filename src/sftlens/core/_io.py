"""Atomic writes and line-checked reads for the artefact formats (JSON, JSONL, parquet, YAML).

Outputs are written to a temporary sibling and renamed when complete, so a crash never leaves a
half-written file under the final name. Readers name the file and line of the first bad record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sftlens.core._bounded import MAX_YAML_BYTES, loads_json, loads_yaml
from sftlens.core._errors import DataError

__all__ = [
    "atomic_dir",
    "atomic_path",
    "append_jsonl",
    "check_input",
    "check_columns",
    "check_output",
    "check_types",
    "read_json",
    "read_jsonl",
    "read_yaml",
    "write_json",
    "write_jsonl",
    "write_parquet",
    "read_parquet",
    "write_text",
]


def _umask() -> int:
    # The only way to read the umask is to set it; set it straight back.
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, is_dir: bool = False) -> Path:
    prefix = f".{path.name}.tmp-"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
            os.close(fd)
            tmp = Path(name)
        # mkstemp/mkdtemp make private (0600/0700) entries; an output gets the usual mode.
        tmp.chmod((0o777 if is_dir else 0o666) & ~_umask())
    except OSError as e:
        raise DataError(
            f"{path}: cannot write here ({e.strerror or type(e).__name__}); choose another path."
        ) from None
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    final = check_output(path)
    tmp = _tmp_sibling(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; it replaces `path` only if the block succeeds.

    Used for checkpoints: a directory under its final name is always complete.
    """
    final = check_output(path, folder=True)
    tmp = _tmp_sibling(final, is_dir=True)
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output(path: str | os.PathLike, folder: bool = False) -> Path:
    """Check, before any work, that an output can be written at `path`; return it.

    The path must not be a folder when a file goes there (or a file when a folder does), and
    its nearest existing parent must be a writable folder (missing folders below it are made
    when the output is written).

    Raises:
        DataError: naming the path and the fix.
    """
    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise DataError(f"{p}: is a file, but a folder is written here; choose another path.")
    if not folder and p.is_dir():
        raise DataError(f"{p}: is a folder; give a file path inside it, e.g. {p / 'out'}.")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{p}: {parent} is a file, not a folder; choose another output path.")
    target = p if folder and p.is_dir() else parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise DataError(f"{p}: cannot write in {target} (permission denied); choose another path.")
    return p


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` atomically (UTF-8) and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write `obj` as JSON atomically (sorted keys, UTF-8)."""
    return write_text(
        path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    )


def check_input(path: str | os.PathLike, what: str = "file") -> Path:
    """Return `path` if it is an existing file; a missing one, or a folder given where a file
    goes, is a `DataError` naming it (`what` names the kind of file in the message)."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not a {what}; give the file inside it.")
    if not p.is_file():
        raise DataError(f"{p}: {what} not found; check the path.")
    return p


def _input_file(p: Path) -> None:
    """A missing input, or a folder given where a file goes, is a `DataError` naming it."""
    if p.is_dir():
        raise DataError(f"{p}: is a folder; give the file inside it.")
    if not p.is_file():
        raise DataError(f"{p}: file not found; check the path.")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing, malformed, too deep or too big file raises `DataError`."""
    p = Path(path)
    _input_file(p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8; re-encode the file as UTF-8.") from None
    return loads_json(text, str(p))


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file safely (no tags beyond plain data, bounded size and aliases).

    Errors (missing file, invalid YAML, an alias bomb, non-UTF-8) name the file and line.
    """
    p = Path(path)
    _input_file(p)
    if p.stat().st_size > MAX_YAML_BYTES:
        raise DataError(f"{p}: {p.stat().st_size} bytes of YAML (at most {MAX_YAML_BYTES}).")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text; save it as UTF-8.") from None
    return loads_yaml(text, str(p))


def _dumps(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write records one JSON object a line, atomically; return the number written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(_dumps(rec) + "\n")
            n += 1
    return n


def append_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Append records to a JSONL file, flushing after each line (for resumable outputs).

    Readers of resumable files pass ``allow_partial_tail=True`` to `read_jsonl`, so a line cut
    by a crash is dropped and redone instead of failing the resume.
    """
    p = check_output(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    _truncate_partial_tail(p)
    with open(p, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(_dumps(rec) + "\n")
            f.flush()
            n += 1
    return n


def _truncate_partial_tail(p: Path) -> None:
    """Drop a trailing line without newline (a write cut by a crash)."""
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = p.read_bytes()
        cut = data.rfind(b"\n") + 1
        f.seek(cut)
        f.truncate()


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


def check_types(rec: Mapping[str, Any], types: Mapping[str, Any], where: str) -> None:
    """Check the type of each field of `rec` named in `types` that is present.

    Args:
        rec: one record.
        types: field -> a type or tuple of types; ``"a.b"`` names field ``b`` of the object
            in field ``a`` (checked when both are present). ``int`` accepts no bool; ``float``
            accepts int.
        where: ``"file:line"`` for the message.

    Raises:
        DataError: naming the place, the key, what it holds and what it should hold.
    """
    for key, want in types.items():
        head, _, tail = key.partition(".")
        value = rec.get(head, _MISSING)
        if tail:
            value = value.get(tail, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            continue
        kinds = want if isinstance(want, tuple) else (want,)
        ok = any(
            isinstance(value, k)
            and not (k in (int, float) and isinstance(value, bool))
            or (k is float and isinstance(value, int) and not isinstance(value, bool))
            for k in kinds
        )
        if not ok:
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            got = _TYPE_NAMES.get(type(value), type(value).__name__)
            raise DataError(f"{where}: key {key!r} holds {got}; it must be {names}.")


_MISSING = object()


def read_jsonl(
    path: str | os.PathLike,
    required: Sequence[str] = (),
    allow_partial_tail: bool = False,
    types: Mapping[str, Any] | None = None,
) -> Iterator[dict]:
    """Yield one dict per line of a JSONL file.

    Args:
        path: the file.
        required: keys every record must have (``"a.b"``: key ``b`` of the object in ``a``); a
            record without one raises `DataError` naming the file, line and key.
        allow_partial_tail: skip a malformed last line without a newline (a resumable output cut
            by a crash) instead of raising.
        types: field -> expected type(s), checked when the field is present (see
            `check_types`).

    Raises:
        DataError: missing file, non-UTF-8 bytes, a line that is not a JSON object, a missing key.
    """
    p = Path(path)
    _input_file(p)
    with open(p, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{p}:{lineno}: not UTF-8; re-encode the file as UTF-8.") from None
            try:
                rec = loads_json(line, f"{p}:{lineno}", "a JSON object")
            except DataError:
                if allow_partial_tail and not raw.endswith(b"\n"):
                    return
                raise
            if not isinstance(rec, dict):
                raise DataError(f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}.")
            for key in required:
                head, _, tail = key.partition(".")
                node = rec.get(head) if tail else rec
                if not isinstance(node, dict) or (tail or key) not in node:
                    has = ", ".join(sorted(map(str, node))) if isinstance(node, dict) else "none"
                    raise DataError(f"{p}:{lineno}: missing key {key!r} (has: {has or 'none'}).")
            if types:
                check_types(rec, types, f"{p}:{lineno}")
            yield rec


def write_parquet(df: Any, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to parquet atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def check_columns(df: Any, columns: Sequence[str], where: str | os.PathLike) -> Any:
    """Return `df` if it has every one of `columns`; else a `DataError` naming the file and
    the first missing column (and the columns it has)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns)) or "none"
        raise DataError(
            f"{where}: no column {missing[0]!r} (has: {have}); regenerate the table with sftlens."
        )
    return df


def read_parquet(path: str | os.PathLike, columns: Sequence[str] = ()) -> Any:
    """Read a parquet file into a DataFrame; a missing or broken file, or one without the
    required `columns`, raises `DataError`."""
    import pandas as pd

    p = Path(path)
    _input_file(p)
    try:
        df = pd.read_parquet(p)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{p}: not a readable parquet file ({type(e).__name__}).") from None
    return check_columns(df, columns, p)
