"""Agreement of the tagger with the task world's exact ``backtrack`` / ``verify`` events.

Renders ``cot`` traces for Countdown and Route (every phrasing the generators use, seeded),
tags them, and reports precision, recall and F1 at span level (a predicted span matches an
event it overlaps) and at sentence level (a predicted span first widened to its sentence).
Countdown is also rendered with ``phrasing="heldout"``: the same searches and events, with
checks and backtracks worded from a phrase bank the rule tests never use (the default bank
shares its phrases with the rules, so F1 1.00 there says little). ``--calibration`` adds the
tagger with a fitted layer.

Usage:
  .venv/bin/python benchmarks/eval_tagger_groundtruth.py --n 500
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="problems per task")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--calibration", default=None, help="also score this fitted layer")
    args = ap.parse_args(argv)

    from sftlens.tasks import get_task
    from sftlens.trace_tagger import RULESET_ID, Tagger
    from sftlens.trace_tagger._evaluate import evaluate_events

    taggers = {"rules": Tagger()}
    if args.calibration:
        taggers["fitted"] = Tagger(calibration=args.calibration)
    print(f"rule set {RULESET_ID}; {args.n} cot traces per task, seed {args.seed}\n")
    print("| task | phrasing | tagger | label | level | precision | recall | F1 | events |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, phrasing in (("countdown", "default"), ("countdown", "heldout"),
                           ("route", "default")):  # fmt: skip
        task = get_task(name)
        problems = task.generate(args.n, seed=args.seed, split="train")
        kw = {"phrasing": phrasing} if phrasing != "default" else {}
        examples = [task.render(p, "cot", args.seed + i, **kw) for i, p in enumerate(problems)]
        for tname, tagger in taggers.items():
            res = evaluate_events(tagger, examples)
            for level in ("sentence", "span"):
                for label, m in res[level].items():
                    print(f"| {name} | {phrasing} | {tname} | {label} | {level} | "
                          f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                          f"{m['n_ref']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
