"""Tag a JSONL file of traces into a Tags JSONL file, over worker processes, resumably.

Output lines follow input order, one per input record. Lines are appended to
``OUT.partial`` as they are done; an interrupted run resumes from there on the next call when
``OUT.partial.json`` (the input's hash, the fields and the rule set) matches the new call, and
stops with one line naming both when it does not. The partial file is renamed to ``OUT`` only
when every record is tagged.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import signal
from pathlib import Path

from sftlens.core import (
    DataError,
    append_jsonl,
    check_input,
    check_output,
    check_types,
    finish_resumable,
    input_record,
    interrupt_point,
    read_jsonl,
    read_traces,
    start_resumable,
)
from sftlens.trace_tagger._ruleset import RULESET_ID

PARTIAL_SUFFIX = ".partial"
CHUNK_RECORDS = 256

_worker_tagger = None


def _records(
    path: Path, text_field: str | None, id_field: str | None, fmt: str
) -> list[tuple[object, object]]:
    """``(id, text)`` per completion, read by `sftlens.core.read_traces` from any trace format."""
    traces = read_traces(path, fmt, text_field=text_field, id_field=id_field).records
    return [(tr["id"], tr["completion"]) for tr in traces]


def resume_record(
    src: Path, fmt: str, text_field: str | None, id_field: str | None, tag_id: str
) -> dict:
    """What a partial Tags output is made from: resumed only when all of it matches."""
    return {
        "input": input_record(src),
        "format": fmt,
        "text_field": text_field,
        "id_field": id_field,
        "ruleset": tag_id,
    }


def _init_worker(ruleset: str, calibration: str | None = None) -> None:
    global _worker_tagger
    from sftlens.trace_tagger._tagger import get_tagger

    _worker_tagger = get_tagger(ruleset, calibration)


def _init_pool_worker(ruleset: str, calibration: str | None = None) -> None:
    # Ctrl-C reaches every process of the terminal's group: workers ignore it, and the parent
    # alone stops the pool (a worker killed by KeyboardInterrupt mid-task would leave the
    # parent waiting forever for that task's result).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(ruleset, calibration)


def _tag_chunk(chunk: list[tuple[object, object]]) -> list[dict]:
    ids = [i for i, _ in chunk]
    tags = _worker_tagger.tag_many([t for _, t in chunk])
    return [{"id": i, **tg} for i, tg in zip(ids, tags, strict=True)]


def chunk_size(n_records: int, workers: int, most: int = CHUNK_RECORDS) -> int:
    """Records per worker task: at most `most`, and small enough that each worker gets at
    least 4 tasks (a 120-record file in one 256-record task would leave a second worker idle)."""
    return max(1, min(most, -(-n_records // (4 * workers))))


def _resume_point(partial: Path, n_total: int) -> int:
    """Records already tagged in our own `partial` (its fingerprint was checked)."""
    done = sum(1 for _ in read_jsonl(partial, allow_partial_tail=True))
    if done > n_total:
        raise DataError(
            f"{partial}: holds {done} records but the input has {n_total}; delete it and rerun."
        )
    return done


def tag_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    text_field: str | None = None,
    id_field: str | None = None,
    workers: int = 1,
    ruleset: str = RULESET_ID,
    chunk_records: int = CHUNK_RECORDS,
    fmt: str = "auto",
    calibration: str | os.PathLike | None = None,
) -> int:
    """Tag every record of a JSONL file and write the Tags JSONL; returns the records written.

    Args:
        in_path: a file of completions in any format `sftlens.core.read_traces` reads (Trace
            JSONL, OpenAI messages or chat completions, batch output, vLLM outputs, lm-eval
            samples, a table with a text column).
        out_path: the Tags JSONL (``id``, ``ruleset``, ``spans``, ``counts``, ``verbosity``);
            written only when complete.
        text_field: a field path to the text (default: the format's own; a null value is
            the empty text).
        id_field: a field path copied to ``id`` (default: the format's own id, else the
            0-based record index).
        workers: processes; 1 tags in this process.
        ruleset: rule-set id.
        chunk_records: most records per task handed to a worker (fewer when the file is
            small: each worker gets at least 4 tasks).
        fmt: the input format (``auto`` detects it; see `sftlens.core.TRACE_FORMATS`).
        calibration: a fitted layer (`sftlens tag-fit`) file, ``"default"``, or None for
            the rules alone; the records' ``ruleset`` then names the fit too.

    Raises:
        DataError: a missing file, a line that is not JSON or not UTF-8, a record without the
            text field (each naming the file and line).
    """
    from sftlens.trace_tagger._calibration import resolve_calibration
    from sftlens.trace_tagger._ruleset import get_ruleset

    get_ruleset(ruleset)  # an unknown id fails before any work
    cal = resolve_calibration(None if calibration is None else str(calibration))
    if cal is not None:
        cal.check_rules(ruleset)
    calibration = None if calibration is None else str(calibration)
    tag_id = cal.tag_id if cal is not None else ruleset
    src, out = check_input(in_path), Path(out_path)
    if workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}.")
    most = 4 * (os.cpu_count() or 1)
    if workers > most:
        # Each worker is a process with its own spaCy pipeline: thousands would exhaust memory.
        raise DataError(f"--workers {workers}: at most {most} (4 per CPU core here).")
    check_output(out)
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    # Validate the whole input first: a bad line fails the run before any output exists.
    records = _records(src, text_field, id_field, fmt)
    n_total = len(records)
    made_from = resume_record(src, fmt, text_field, id_field, tag_id)
    # Only a partial made from this input with these options is resumed; another is an error.
    done = _resume_point(partial, n_total) if start_resumable(partial, made_from) else 0
    todo = itertools.islice(records, done, None)
    size = chunk_size(n_total - done, workers, chunk_records)
    chunks = iter(lambda: list(itertools.islice(todo, size)), [])
    written = done
    if workers == 1:
        _init_worker(ruleset, calibration)
        for chunk in chunks:
            written += append_jsonl(partial, _tag_chunk(chunk))
    else:
        # Fork where the platform allows it: workers inherit the built tagger instead of each
        # importing spaCy and loading the lookup tables again (seconds per worker).
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        if method == "fork":
            _init_worker(ruleset, calibration)
        ctx = mp.get_context(method)
        with ctx.Pool(
            workers, initializer=_init_pool_worker, initargs=(ruleset, calibration)
        ) as pool:
            # imap keeps input order, so the partial file is always a prefix of the output
            # (and an interrupted run resumes after the last chunk appended).
            for result in pool.imap(_tag_chunk, chunks):
                written += append_jsonl(partial, result)
                interrupt_point("tag.pool")
    if n_total == 0:
        partial.touch()
    finish_resumable(partial, out)
    return written


_NONE = type(None)
TAG_TYPES = {
    "id": (str, int),
    "ruleset": str,
    "spans": list,
    "counts": dict,
    "verbosity": dict,
    "checks": (dict, _NONE),
}
SPAN_TYPES = {"start": int, "end": int, "label": str, "rule": (str, _NONE), "text": (str, _NONE)}
# The trace fields the tag tables read (traces from any tool: checked only when present).
TRACE_FIELD_TYPES = {
    "id": (str, int),
    "model": (str, _NONE),
    "task": (str, _NONE),
    "checkpoint": (dict, _NONE),
    "checkpoint.step": (int, _NONE),
    "score": (dict, _NONE),
    "n_tokens": (int, _NONE),
}


def read_tags(path: str | os.PathLike) -> list[dict]:
    """Read a Tags JSONL file (every record must have ``id``, ``spans``, ``counts``).

    Field types are checked too (spans a list of objects with integer offsets and a string
    label, counts and verbosity objects of numbers); a wrong one names file, line and key.
    """
    out = []
    for lineno, rec in enumerate(
        read_jsonl(path, required=("id", "spans", "counts"), types=TAG_TYPES), start=1
    ):
        where = f"{path}: record {lineno}"
        for k, span in enumerate(rec["spans"]):
            if not isinstance(span, dict):
                raise DataError(f"{where}: key 'spans' item {k} is not an object.")
            check_types(span, SPAN_TYPES, f"{where}: spans[{k}]")
            for key in ("start", "end", "label"):
                if key not in span:
                    raise DataError(f"{where}: spans[{k}] has no key {key!r}.")
        for field in ("counts", "verbosity"):
            for name, v in (rec.get(field) or {}).items():
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise DataError(
                        f"{where}: key '{field}.{name}' holds {v!r}; it must be a number."
                    )
        out.append(rec)
    return out


def format_spans(text: str, tags: dict) -> str:
    """Human-readable lines for ``sftlens tag --text``: one line per span, then the counts."""
    lines = [
        f"{sp['start']:>6}-{sp['end']:<6} {sp['label']:<18} {sp['rule']:<20} {sp['text']!r}"
        for sp in tags["spans"]
    ]
    lines.append(f"ruleset: {tags['ruleset']}")
    lines.append("counts: " + json.dumps(tags["counts"]))
    lines.append("verbosity: " + json.dumps(tags["verbosity"]))
    return "\n".join(lines)
