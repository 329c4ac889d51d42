"""How much a surface reader knows about dead ends, before and after matching (no model needed).

Builds the dead-end probe set exactly as `sftlens probe dead-end` does (Countdown eval problems,
each rendered with 0, 1 and 2 dead branches; step-end positions; states whose next text is not
a verdict; each distinct state once), tokenizes it with a checkpoint's tokenizer (or a BPE
tokenizer fitted to the traces), and fits only the surface baseline, on all states and on the
surface-matched balanced pairs. Also runs the old design (one render per problem as SFT saw
it) to show the confound the matched design removes.

Usage:
  .venv/bin/python benchmarks/eval_matched_design.py --n-problems 560
  .venv/bin/python benchmarks/eval_matched_design.py --tokenizer runs/x/models/a/checkpoints/step-000000
"""

from __future__ import annotations

import argparse
import time

# countdown_lab's cot knobs (the problems the toy models are trained on).
KNOBS = {"min_numbers": 3, "max_numbers": 3, "max_number": 13, "min_target": 10,
         "max_target": 60, "ops": "+-*"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-problems", type=int, default=560)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--caliper", type=float, default=0.25)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--tokenizer", default=None, help="checkpoint dir (default: fit a BPE)")
    args = ap.parse_args(argv)

    import pandas as pd

    from sftlens.core import load_tokenizer
    from sftlens.probes import countdown_examples, dead_end_items, matched_probe
    from sftlens.tasks import build_tokenizer

    designs = {
        "renders with 0,1,2 dead branches (default)": [0, 1, 2],
        "one render per problem (max_expansions 1, as SFT data)": None,
    }
    tok = None
    print(f"{args.n_problems} eval problems, seed {args.seed}, caliper {args.caliper} SD\n")
    print(
        "| probe set | states | dead | pairs | surface AUROC all states | surface AUROC matched |"
    )
    print("|---|---|---|---|---|---|")
    for name, exps in designs.items():
        t0 = time.perf_counter()
        if exps is None:
            from sftlens.tasks import get_task

            task = get_task("countdown")
            probs = task.generate(args.n_problems, args.seed, split="eval", **KNOBS)
            examples = [
                {**task.render(p, "cot", args.seed + i, max_expansions=1), "problem_id": p["id"]}
                for i, p in enumerate(probs)
            ]
        else:
            examples = countdown_examples(args.n_problems, args.seed, knobs=KNOBS, expansions=exps)
        if tok is None:
            tok = (
                load_tokenizer(args.tokenizer)
                if args.tokenizer
                else build_tokenizer([e["prompt"] + e["response"] for e in examples], 512)
            )
        rows = []
        for it in dead_end_items(tok, examples, kinds=["step_end"]):
            rows += [{**r, "group": it.group} for r in it.rows]
        index = pd.DataFrame(rows)
        keys = ["group", "position_kind", "state", "step_idx", "resp_pos", "dead_end"]
        index["repeat"] = index.duplicated(keys).astype(int)
        table, _ = matched_probe(
            {}, index, "dead_end", where="repeat == 0 and verdict_next == 0", hooks=[],
            caliper=args.caliper, n_boot=args.n_boot, seed=args.seed,
        )  # fmt: skip
        surf = table[table["probe"] == "surface"].set_index("design")
        u = surf.loc["unmatched"]
        cell = {d: f"{r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]" for d, r in surf.iterrows()}
        print(
            f"| {name} | {int(u['n'])} | {int(u['n_pos'])} | {int(u['n_pairs'])} | "
            f"{cell['unmatched']} | {cell.get('matched', 'no pairs')} |"
        )
        print(f"<!-- {time.perf_counter() - t0:.1f}s -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
