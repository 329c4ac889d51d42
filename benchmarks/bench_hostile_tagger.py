"""The tagger on hostile text: time against length for bracket runs and one huge trace.

spaCy strips prefixes and suffixes from a run without white space one at a time, searching its
suffix regex over the whole rest of the run each time: quadratic in the run's length. The
tagger bounds both (`TailSearch`, `RunBoundedTokenizer` in ``trace_tagger/_pipeline.py``).
This script shows time against length:

  * stock: the tagger's pipeline with spaCy's own suffix search and tokenizer (the old
    behaviour) on bracket runs of 2-8 KB (quadratic: each doubling ~4x);
  * now: the tagger on bracket runs of 20 KB - 1.3 MB (random ``()[]{}``, seeded);
  * one trace of ordinary reasoning text of 2 MB and 20 MB (one record, cut into pieces by
    the tagger) and, for scale, spaCy's bare tokenizer on the same 2 MB.

Rates are CPU seconds of this process (the machine may be shared). Text: the Thought Anchors
traces (``../shared/data/thought_anchors_math_dev.jsonl``) when present, else Countdown cot.

Usage:
  .venv/bin/python benchmarks/bench_hostile_tagger.py
  .venv/bin/python benchmarks/bench_hostile_tagger.py --quick   # smaller sizes, no 20 MB
"""

from __future__ import annotations

import argparse
import random
import time

from bench_tagger import load_texts


def _cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def brackets(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("()[]{}") for _ in range(n))


def stock_nlp():
    """The tagger's pipeline with spaCy's own suffix search and tokenizer (old behaviour)."""
    from spacy.util import compile_suffix_regex

    from sftlens.trace_tagger._pipeline import build_nlp

    nlp = build_nlp()
    tok = nlp.tokenizer.tokenizer  # unwrap RunBoundedTokenizer
    suffixes = [*nlp.Defaults.suffixes, r"(?<=^[A-Za-z])\."]
    tok.suffix_search = compile_suffix_regex(suffixes).search
    nlp.tokenizer = tok
    return nlp


def row(label: str, n: int, seconds: float) -> None:
    rate = n / seconds / 1e3 if seconds else float("inf")
    print(f"| {label} | {n:,} | {seconds:.3f} | {rate:,.0f} KB/s |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, skip the 20 MB trace")
    args = ap.parse_args()

    from sftlens.trace_tagger import RULESET_ID
    from sftlens.trace_tagger._tagger import get_tagger

    tagger = get_tagger(RULESET_ID)
    tagger.tag("warm up: Wait, let me check.")
    print("| input | chars | CPU s | rate |\n|---|---|---|---|")

    stock = stock_nlp()
    for n in (2_000, 4_000) if args.quick else (2_000, 4_000, 8_000):
        text = brackets(n, seed=n)
        row("brackets, stock spaCy tokenizer", n, _cpu_time(lambda t=text: stock.make_doc(t)))

    sizes = (20_000, 80_000) if args.quick else (20_000, 80_000, 320_000, 1_280_000)
    for n in sizes:
        text = brackets(n, seed=n)
        row("brackets, tagger", n, _cpu_time(lambda t=text: tagger.tag(t)))

    texts, source = load_texts(1)
    corpus = "\n\n".join(texts)
    for mb in (2,) if args.quick else (2, 20):
        n = mb * 1_000_000
        big = (corpus * (n // len(corpus) + 1))[:n]
        row(f"one {mb} MB trace ({source}), tagger", n, _cpu_time(lambda t=big: tagger.tag(t)))
        if mb == 2:
            bare = stock_nlp().tokenizer
            pieces = [big[i : i + 20_000] for i in range(0, n, 20_000)]
            row(f"one {mb} MB trace, bare spaCy tokenizer", n,
                _cpu_time(lambda p=pieces, b=bare: [b(x) for x in p]))  # fmt: skip


if __name__ == "__main__":
    main()
