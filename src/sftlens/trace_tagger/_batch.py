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
from pathlib import Path

from sftlens.core import DataError, append_jsonl, read_jsonl, read_traces
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


def _init_worker(ruleset: str) -> None:
    global _worker_tagger
    from sftlens.trace_tagger._tagger import get_tagger

    _worker_tagger = get_tagger(ruleset)


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
    text_field: str | None = None,
    id_field: str | None = None,
    workers: int = 1,
    ruleset: str = RULESET_ID,
    chunk_records: int = CHUNK_RECORDS,
    fmt: str = "auto",
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

    Raises:
        DataError: a missing file, a line that is not JSON or not UTF-8, a record without the
            text field (each naming the file and line).
    """
    from sftlens.trace_tagger._ruleset import get_ruleset

    get_ruleset(ruleset)  # an unknown id fails before any work
    src, out = Path(in_path), Path(out_path)
    if not src.is_file():
        raise DataError(f"{src}: file not found; check the path.")
    if workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}.")
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    done = _resume_point(partial, ruleset)
    # Validate the whole input first: a bad line fails the run before any output exists.
    records = _records(src, text_field, id_field, fmt)
    n_total = len(records)
    todo = itertools.islice(records, done, None)
    size = chunk_size(n_total - done, workers, chunk_records)
    chunks = iter(lambda: list(itertools.islice(todo, size)), [])
    written = done
    if workers == 1:
        _init_worker(ruleset)
        for chunk in chunks:
            written += append_jsonl(partial, _tag_chunk(chunk))
    else:
        # Fork where the platform allows it: workers inherit the built tagger instead of each
        # importing spaCy and loading the lookup tables again (seconds per worker).
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        if method == "fork":
            _init_worker(ruleset)
        ctx = mp.get_context(method)
        with ctx.Pool(workers, initializer=_init_worker, initargs=(ruleset,)) as pool:
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
