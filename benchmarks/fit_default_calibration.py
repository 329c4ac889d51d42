"""Fit the calibration shipped in the package on the tuning problems of the dev files.

Data: ``../shared/data/thought_anchors_math_dev.jsonl`` (``self_checking`` -> verification) and
``../shared/data/thought_anchors_puzzles_dev.jsonl`` (``Backtracking`` -> backtracking); skipped
when absent. The first half of each file's problems (sorted) tunes; the rest is held out. The
coding file is one trace, so it only evaluates (`eval_tagger_fit.py`). Writes
``src/sftlens/trace_tagger/data/default_calibration.json`` and prints the figures stored in it.

``--swap-halves`` fits on the second half instead and only prints (nothing is written): how
much a held-out figure depends on which problems are held out.

Usage:
  .venv/bin/python benchmarks/fit_default_calibration.py [--swap-halves]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
FILES = ("thought_anchors_math_dev.jsonl", "thought_anchors_puzzles_dev.jsonl")
MAPS = {"self_checking": "verification", "Backtracking": "backtracking"}


def main() -> int:
    swap = "--swap-halves" in sys.argv[1:]
    if not all((DATA / f).is_file() for f in FILES):
        print(f"skipped: {DATA} lacks {FILES} (reference data, not part of the project)")
        return 0
    from sftlens.trace_tagger._calibration import DEFAULT_CALIBRATION
    from sftlens.trace_tagger._cli_fit import _table
    from sftlens.trace_tagger._fit import FitConfig, fit_calibration

    t0 = time.process_time()
    cfg = FitConfig(tune_half="second" if swap else "first")
    cal = fit_calibration([DATA / f for f in FILES], MAPS, cfg)
    cpu = time.process_time() - t0
    if swap:
        print("tuned on the second half of each file's problems; nothing written\n")
        print("\n".join(_table(cal.model["figures"], ("file", "split", "label", "tagger"))))
        return 0
    cal.save(DEFAULT_CALIBRATION)
    n = sum(f["sentences"] for f in cal.model["training_files"])
    print(
        f"fit {cal.id} over {cal.ruleset}: {n} labelled sentences, {cpu:.1f} s CPU (this "
        f"process), {DEFAULT_CALIBRATION.stat().st_size / 1e3:.0f} kB -> {DEFAULT_CALIBRATION}\n"
    )
    print("\n".join(_table(cal.model["figures"], ("file", "split", "label", "tagger"))))
    print("\nLearning curve (held-out F1 / count correlation after N tuning sentences):\n")
    print("| file | label | " + " | ".join(f"N={n}" for n in (50, 100, 200, 500)) + " |")
    print("|---|---|---|---|---|---|")
    keys = sorted({(p["file"], p["label"]) for p in cal.model["learning_curve"]})
    for f, lab in keys:
        cells = [f"{p['f1']:.2f} / {p['count_corr']:.2f}" for p in cal.model["learning_curve"]
                 if (p["file"], p["label"]) == (f, lab)]  # fmt: skip
        print(f"| {f} | {lab} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
