"""Sentence-level agreement of the tagger with LLM-judge labels on real R1-distill traces.

Data: ``../shared/data/thought_anchors_math_dev.jsonl`` (Thought Anchors, 40 traces, 5,814
sentence chunks labelled by GPT-4o; skipped when absent). A chunk is predicted X when any
X span overlaps it. Mapped labels: verification ~ ``self_checking``; backtracking against
``uncertainty_management`` (a superset: confusion, re-evaluation, alternatives), reported
separately for precision and recall, and backtracking-or-hedging against it too.

Splits: the rules were tuned on the traces of the first half of the problems (sorted by
problem id); the second half is held out. Also printed: F1 per problem, and the judge's
agreement with itself on sentences whose text occurs more than once in the set (the same
words, labelled in different traces): a ceiling for a tagger that decides from the words alone.

Usage:
  .venv/bin/python benchmarks/eval_tagger_thought_anchors.py
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "thought_anchors_math_dev.jsonl"

COMPARISONS = (
    ("verification", {"verification"}, {"self_checking"}),
    ("backtracking", {"backtracking"}, {"uncertainty_management"}),
    ("backtracking or hedging", {"backtracking", "hedging"}, {"uncertainty_management"}),
    ("verification, backtracking or hedging", {"verification", "backtracking", "hedging"},
     {"self_checking", "uncertainty_management"}),
)  # fmt: skip


def chunk_predictions(rec: dict, tags: dict) -> list[tuple[set[str], set[str]]]:
    """(predicted labels, judge tags) per chunk of one trace."""
    out = []
    text = rec["text"]
    pos = 0
    for ch in rec["chunks"]:
        s, e = ch["start"], ch["end"]
        if s is None:
            # White space differs: find the chunk's words in order, any white space between.
            words = ch["text"].split()
            m = re.compile(r"\s*".join(re.escape(w) for w in words)).search(text, pos)
            s, e = (m.start(), m.end()) if m and words else (-1, -1)
        pos = max(pos, e)
        labels = {sp["label"] for sp in tags["spans"] if sp["start"] < e and sp["end"] > s}
        out.append((labels, set(ch["tags"])))
    return out


def prf(pairs) -> tuple[float, float, float, int, int]:
    tp = sum(p and g for p, g in pairs)
    fp = sum(p and not g for p, g in pairs)
    fn = sum(g and not p for p, g in pairs)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1, tp + fp, tp + fn


def judge_self_agreement(recs: list[dict], label: str) -> tuple[float, int, int]:
    """Pairwise F1 of the judge with itself on `label`, over pairs of chunks with the same text.

    Returns (F1, pairs where both carry `label`, pairs where exactly one does): each such pair
    is one judge call against another on identical words, so F1 = 2 * both / (2 * both + one).
    """
    by_text: dict[str, list[bool]] = defaultdict(list)
    for r in recs:
        for ch in r["chunks"]:
            by_text[" ".join(ch["text"].lower().split())].append(label in ch["tags"])
    both = one = 0
    for flags in by_text.values():
        for a, b in itertools.combinations(flags, 2):
            both += a and b
            one += a != b
    return (2 * both / (2 * both + one) if both else 0.0), both, one


def main() -> int:
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (reference data, not part of the project)")
        return 0
    from sftlens.trace_tagger import RULESET_ID, Tagger

    recs = [json.loads(line) for line in DATA.open(encoding="utf-8")]
    problems = sorted({r["id"].rsplit("/", 1)[-1] for r in recs})
    tune = set(problems[: len(problems) // 2])
    tags = list(Tagger().tag_many([r["text"] for r in recs]))
    chunks: dict[str, list] = {"tuning half": [], "held-out half": [], "all": []}
    per_problem: dict[str, list] = defaultdict(list)
    for r, t in zip(recs, tags, strict=True):
        problem = r["id"].rsplit("/", 1)[-1]
        split = "tuning half" if problem in tune else "held-out half"
        preds = chunk_predictions(r, t)
        chunks[split] += preds
        chunks["all"] += preds
        per_problem[problem] += preds
    print(f"rule set {RULESET_ID}; {len(recs)} traces, {len(chunks['all'])} sentence chunks; "
          f"tuning problems: {', '.join(sorted(tune))}\n")  # fmt: skip
    print(
        "| sftlens label(s) | judge label(s) | split | precision | recall | F1 | predicted | judge |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, ours, theirs in COMPARISONS:
        for split, rows in chunks.items():
            p, r, f, npred, ngold = prf([(bool(lab & ours), bool(g & theirs)) for lab, g in rows])
            print(f"| {name} | {' or '.join(sorted(theirs))} | {split} | {p:.2f} | {r:.2f} | "
                  f"{f:.2f} | {npred} | {ngold} |")  # fmt: skip

    print("\nF1 per problem (T: tuning half, H: held out); judge count in brackets:\n")
    print(
        "| sftlens label | judge label | "
        + " | ".join(f"{p.removeprefix('problem_')} {'T' if p in tune else 'H'}" for p in problems)
        + " |"
    )
    print("|---|---|" + "---|" * len(problems))
    for name, ours, theirs in COMPARISONS[:2]:
        cells = []
        for p in problems:
            _, _, f, _, ngold = prf(
                [(bool(lab & ours), bool(g & theirs)) for lab, g in per_problem[p]]
            )
            cells.append(f"{f:.2f} ({ngold})")
        print(f"| {name} | {' or '.join(sorted(theirs))} | " + " | ".join(cells) + " |")

    print("\nThe judge against itself on chunks with identical text (pairs of chunks):\n")
    print("| judge label | pairs, both labelled | pairs, one labelled | judge-judge F1 |")
    print("|---|---|---|---|")
    for label in ("self_checking", "uncertainty_management"):
        f, both, one = judge_self_agreement(recs, label)
        print(f"| {label} | {both} | {one} | {f:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
