"""The shipped calibration against the rules alone, per dev file and split, through `tag`'s path.

Unlike the figures `tag-fit` stores (scored on the judge's chunks), these run the real tagger
(spaCy sentences, rules, the fitted layer) over each trace and score a chunk as predicted when a
span overlaps it: what a user of ``sftlens tag --calibration default`` gets.

Files and maps (``../shared/data``; skipped when absent):
  * math: ``self_checking`` -> verification; ``uncertainty_management`` -> backtracking (a
    superset of backtracking: read its recall, not its precision);
  * puzzles: ``Backtracking`` -> backtracking;
  * coding (one trace, never fitted on: the out-of-domain check): ``verification`` ->
    verification, ``uncertainty_management`` -> backtracking.

Usage:
  .venv/bin/python benchmarks/eval_tagger_fit.py [--calibration default]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
RUNS = (
    ("thought_anchors_math_dev.jsonl",
     {"self_checking": "verification", "uncertainty_management": "backtracking"},
     ("tuning", "held-out")),
    ("thought_anchors_puzzles_dev.jsonl", {"Backtracking": "backtracking"}, ("tuning", "held-out")),
    ("qwq_coding_dev.jsonl",
     {"verification": "verification", "uncertainty_management": "backtracking"}, ("all",)),
)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibration", default="default")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found (reference data, not part of the project)")
        return 0
    from sftlens.trace_tagger._cli_fit import _table
    from sftlens.trace_tagger._tageval import evaluate_labelled
    from sftlens.trace_tagger._tagger import get_tagger

    taggers = {"rules": get_tagger(), "fitted": get_tagger(calibration=args.calibration)}
    print("; ".join(f"{k}: {t.tag_id}" for k, t in taggers.items()) + "\n")
    rows = []
    for name, maps, splits in RUNS:
        if not (DATA / name).is_file():
            continue
        for split in splits:
            found, info = evaluate_labelled(DATA / name, maps, taggers, split=split,
                                            n_boot=args.n_boot)  # fmt: skip
            for r in found:
                judge = "/".join(t for t, lab in maps.items() if lab == r["label"])
                rows.append({"file": name.removesuffix("_dev.jsonl"), "split": split,
                             "judge tag": judge, **r})  # fmt: skip
    print("\n".join(_table(rows, ("file", "split", "judge tag", "label", "tagger"))))
    print("\nFalse positives of the fitted tagger on held-out/all splits (judge's tags instead):\n")
    for r in rows:
        if r["tagger"] == "fitted" and r["split"] != "tuning":
            top = ", ".join(f"{t} {n}" for t, n in list(r["false_positive_tags"].items())[:4])
            print(f"- {r['file']} {r['split']} {r['label']}: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
