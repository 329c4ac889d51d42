"""Tag a JSONL file of traces into a Tags JSONL file, over worker processes, resumably.

Output lines follow input order, one per input record. Lines are appended to
``OUT.partial`` as they are done; an interrupted run resumes from there on the next call (the
partial file names its rule set in its first record, and a different rule set starts over), and
the partial file is renamed to ``OUT`` only when every record is tagged.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
from collections.abc import Iterator
from pathlib import Path

from sftlens.core import DataError, append_jsonl, read_jsonl
from sftlens.trace_tagger._ruleset import RULESET_ID

PARTIAL_SUFFIX = ".partial"
CHUNK_RECORDS = 256

_worker_tagger = None


def _records(path: Path, text_field: str, id_field: str) -> Iterator[tuple[object, object]]:
    """``(id, text)`` per record; a record without the text field is an error naming its line."""
    for k, rec in enumerate(read_jsonl(path, required=(text_field,))):
        text = rec[text_field]
        if text is not None and not isinstance(text, str):
            raise DataError(
                f"{path}: record {k + 1}: field {text_field!r} is {type(text).__name__}, "
                "not a string; pass --text-field naming the text."
            )
        yield rec.get(id_field, k), text


def _init_worker(ruleset: str, calibration: str | None = None) -> None:
    global _worker_tagger
    from sftlens.trace_tagger._tagger import get_tagger

    _worker_tagger = get_tagger(ruleset, calibration)


def _tag_chunk(chunk: list[tuple[object, object]]) -> list[dict]:
    ids = [i for i, _ in chunk]
    tags = _worker_tagger.tag_many([t for _, t in chunk])
    return [{"id": i, **tg} for i, tg in zip(ids, tags, strict=True)]


def chunk_size(n_records: int, workers: int, most: int = CHUNK_RECORDS) -> int:
    """Records per worker task: at most `most`, and small enough that each worker gets at
    least 4 tasks (a 120-record file in one 256-record task would leave a second worker idle)."""
    return max(1, min(most, -(-n_records // (4 * workers))))


def _resume_point(partial: Path, ruleset: str) -> int:
    """Records already tagged in `partial` (0 when absent or from another rule set)."""
    if not partial.exists():
        return 0
    done = 0
    try:
        for rec in read_jsonl(partial, allow_partial_tail=True):
            if rec.get("ruleset") != ruleset:
                partial.unlink()
                return 0
            done += 1
    except DataError:
        partial.unlink()
        return 0
    return done


def tag_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    text_field: str = "completion",
    id_field: str = "id",
    workers: int = 1,
    ruleset: str = RULESET_ID,
    chunk_records: int = CHUNK_RECORDS,
    calibration: str | os.PathLike | None = None,
) -> int:
    """Tag every record of a JSONL file and write the Tags JSONL; returns the records written.

    Args:
        in_path: JSONL with one text per record under `text_field`.
        out_path: the Tags JSONL (``id``, ``ruleset``, ``spans``, ``counts``, ``verbosity``);
            written only when complete.
        text_field: the record key holding the text (a null value is the empty text).
        id_field: the record key copied to ``id`` (the 0-based record index when absent).
        workers: processes; 1 tags in this process.
        ruleset: rule-set id.
        chunk_records: most records per task handed to a worker (fewer when the file is
            small: each worker gets at least 4 tasks).
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
    src, out = Path(in_path), Path(out_path)
    if not src.is_file():
        raise DataError(f"{src}: file not found; check the path.")
    if workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}.")
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    done = _resume_point(partial, tag_id)
    # Validate the whole input first: a bad line fails the run before any output exists.
    n_total = sum(1 for _ in _records(src, text_field, id_field))
    todo = itertools.islice(_records(src, text_field, id_field), done, None)
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
        with ctx.Pool(workers, initializer=_init_worker, initargs=(ruleset, calibration)) as pool:
            # imap keeps input order, so the partial file is always a prefix of the output.
            for result in pool.imap(_tag_chunk, chunks):
                written += append_jsonl(partial, result)
    if n_total == 0:
        partial.touch()
    os.replace(partial, out)
    return written


def read_tags(path: str | os.PathLike) -> list[dict]:
    """Read a Tags JSONL file (every record must have ``id``, ``spans``, ``counts``)."""
    return list(read_jsonl(path, required=("id", "spans", "counts")))


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
