"""The fitted layer against a plain yardstick fitted the same way, on both halves of the dev files.

Yardstick: the issue's plain model, a logistic regression over the sentence's words and word
pairs and the previous sentence's (no rule hits, no place, no re-derivation, no episodes).
Both are fitted by `tag-fit`'s own code (same solver, threshold search, pruning) on one half of
each file's problems and scored on the other; then the halves are swapped. Data as in
`fit_default_calibration.py` (skipped when absent). Nothing is written.

Usage:
  .venv/bin/python benchmarks/eval_tagger_fit_yardstick.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
FILES = ("thought_anchors_math_dev.jsonl", "thought_anchors_puzzles_dev.jsonl")
MAPS = {"self_checking": "verification", "Backtracking": "backtracking"}
LABELS = ["verification", "backtracking"]


def yardstick(feats: list[set[str]]) -> list[set[str]]:
    """Words and word pairs of the sentence and of the previous sentence only."""
    out = []
    for i, fs in enumerate(feats):
        own = {x for x in fs if x.startswith(("w:", "b:"))}
        if i:
            own |= {"p" + x for x in feats[i - 1] if x.startswith(("w:", "b:"))}
        out.append(own)
    return out


def main() -> int:
    if not all((DATA / f).is_file() for f in FILES):
        print(f"skipped: {DATA} lacks {FILES} (reference data, not part of the project)")
        return 0
    from sftlens.trace_tagger import RULESET_ID
    from sftlens.trace_tagger._fit import FitConfig, _fit_model, _load, measure
    from sftlens.trace_tagger._tagger import get_tagger

    files = _load([DATA / f for f in FILES], MAPS, get_tagger())
    full = [f.features for f in files]
    print("| tuned on | scored on | file | label | model | F1 | count corr |")
    print("|---|---|---|---|---|---|---|")
    for swap in (False, True):
        for f in files:
            f.held_out = [not h for h in f.held_out] if swap else f.held_out
        for name, transform in (("fitted layer", None), ("yardstick", yardstick)):
            for f, feats in zip(files, full, strict=True):
                f.features = feats if transform is None else [transform(t) for t in feats]
            cal = _fit_model(files, MAPS, LABELS, FitConfig(), RULESET_ID)
            for r in measure(files, cal, MAPS, FitConfig(n_boot=0)):
                if r["tagger"] == "fitted" and r["split"] == "held-out":
                    tuned, scored = ("second", "first") if swap else ("first", "second")
                    corr = r["count_corr"]
                    print(f"| {tuned} half | {scored} half | {r['file'].removesuffix('_dev.jsonl')} "
                          f"| {r['label']} | {name} | {r['f1']:.2f} | {corr:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
