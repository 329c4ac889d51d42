"""Agreement of the tagger with the task world's exact ``backtrack`` / ``verify`` events.

Renders ``cot`` traces for Countdown and Route (every phrasing the generators use, seeded),
tags them, and reports precision, recall and F1 at span level (a predicted span matches an
event it overlaps) and at sentence level (a predicted span first widened to its sentence).

Usage:
  .venv/bin/python benchmarks/eval_tagger_groundtruth.py --n 500
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="problems per task")
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args(argv)

    from sftlens.tasks import get_task
    from sftlens.trace_tagger import RULESET_ID, Tagger
    from sftlens.trace_tagger._evaluate import evaluate_events

    tagger = Tagger()
    print(f"rule set {RULESET_ID}; {args.n} cot traces per task, seed {args.seed}\n")
    print("| task | label | level | precision | recall | F1 | events |")
    print("|---|---|---|---|---|---|---|")
    for name in ("countdown", "route"):
        task = get_task(name)
        problems = task.generate(args.n, seed=args.seed, split="train")
        examples = [task.render(p, "cot", args.seed + i) for i, p in enumerate(problems)]
        res = evaluate_events(tagger, examples)
        for level in ("sentence", "span"):
            for label, m in res[level].items():
                print(f"| {name} | {label} | {level} | {m['precision']:.3f} | {m['recall']:.3f} "
                      f"| {m['f1']:.3f} | {m['n_ref']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
