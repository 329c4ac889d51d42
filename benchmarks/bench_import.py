"""Reading other tools' completions into the Trace contract: `read_traces` vs bare `json.loads`.

For each format, writes N records (the test fixtures' shapes, ids made unique) to a temporary
file and times, round-robin over R rounds, (a) `json.loads` of every line (the floor any reader
pays) and (b) `sftlens.core.read_traces` (format detection, field extraction, ids, the
``<think>`` mark, the duplicate-id check). Prints records/s and the per-round ratio.

Run:  .venv/bin/python benchmarks/bench_import.py [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats"
FILES = {
    "messages": "openai_messages.jsonl",
    "chat": "chat_completions.jsonl",
    "batch": "batch_output.jsonl",
    "vllm": "vllm_outputs.jsonl",
    "lm-eval": "samples_gsm8k_2026-01-05T10-11-12.123456.jsonl",
}
# Where each format keeps the id that must stay unique.
ID_KEY = {"messages": "id", "chat": "id", "batch": "custom_id", "vllm": "request_id",
          "lm-eval": "doc_id"}  # fmt: skip


def _write(fmt: str, n: int, dest: Path) -> Path:
    recs = [json.loads(x) for x in (FIXTURES / FILES[fmt]).read_text().splitlines() if x.strip()]
    path = dest / (FILES[fmt] if fmt == "lm-eval" else f"{fmt}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            rec = dict(recs[i % len(recs)])
            if fmt == "lm-eval":
                rec = dict(recs[2 * (i % (len(recs) // 2))], doc_id=i)  # one filter per doc
            else:
                rec[ID_KEY[fmt]] = f"r{i}"
            f.write(json.dumps(rec) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from sftlens.core import read_traces

    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FILES:
            path = _write(fmt, args.n, Path(tmp))
            t_json, t_read, ratios = [], [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                with open(path, encoding="utf-8") as f:
                    rows = [json.loads(line) for line in f]
                t1 = time.perf_counter()
                got = read_traces(path)
                t2 = time.perf_counter()
                t_json.append(t1 - t0)
                t_read.append(t2 - t1)
                ratios.append((t2 - t1) / (t1 - t0))
            assert got.format == fmt and len(rows) == args.n
            print(f"{fmt:9s} {len(got.records):6d} traces  json.loads {args.n / min(t_json):9.0f} "
                  f"rec/s  read_traces {args.n / min(t_read):9.0f} rec/s  ratio (median of "
                  f"rounds) {statistics.median(ratios):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
