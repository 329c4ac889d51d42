"""Countdown data throughput and the verifier against the evaluator a user would write instead.

Measures, on this machine:
  * problems generated per second, and traces rendered per second in each style
    (`cot` cold = first render, when the dead-end oracle's cache is empty);
  * trace statistics: `cot` words (median, 10th/90th percentile), backtracks per trace,
    `verbose`/`cot` length ratio, and the measured `lowq` error rate (knob default 0.3);
  * verifier checks per second vs a naive `ast.parse`-based safe evaluator (the usual
    alternative: parse with Python's grammar, walk the tree allowing only + - * / on integer
    constants, evaluate with Fractions) on the same answers; the ratio, and how each handles
    hostile strings;
  * trace parser throughput (claims found per second).

Rates are per CPU second of this (single-threaded) process (`time.process_time`), so they hold
on a shared machine; on an idle one wall-clock rates are the same.

Run: .venv/bin/python benchmarks/bench_tasks.py [--n 1000]
"""

from __future__ import annotations

import argparse
import ast
import platform
import statistics
import sys
import time
from collections import Counter
from fractions import Fraction

from sftlens.tasks import get_task, parse_countdown_trace, verify_countdown


def ast_verify(expression: str, numbers: list[int], target: int) -> dict:
    """The baseline: Python's parser, then a whitelist walk of the tree with exact values."""
    if not isinstance(expression, str) or len(expression) > 200:
        return {"correct": False, "reason": "bad input"}
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return {"correct": False, "reason": type(e).__name__}
    used: list[int] = []
    ops = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__}

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            used.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Div):
                if right == 0:
                    raise ZeroDivisionError
                return left / right
            if type(node.op) in ops:
                return ops[type(node.op)](left, right)
        raise ValueError(type(node).__name__)

    try:
        value = ev(tree)
    except (ValueError, ZeroDivisionError, RecursionError) as e:
        return {"correct": False, "reason": type(e).__name__}
    ok = sorted(used) == sorted(numbers) and value == target
    return {"correct": ok, "reason": "ok" if ok else "wrong"}


# name -> (answer, numbers, target): each would be right if its arithmetic were read loosely.
HOSTILE = {
    "__import__('os')": ("__import__('os')", [1, 2], 3),
    "2**10": ("2**10", [2, 10], 1024),
    "1e3": ("1e3", [1, 3], 1000),
    "unary minus: -3+5+0": ("-3+5+0", [3, 5, 0], 2),
    "digit separator: 1_0+1": ("1_0+1", [10, 1], 11),
    "unicode digits: ٣+٥": ("٣+٥", [3, 5], 8),
    "full-width digits: ３+５": ("３+５", [3, 5], 8),
    "10k nested parens": ("(" * 10_000 + "1+2" + ")" * 10_000, [1, 2], 3),
    "5,000 terms 1+1+...": ("+".join(["1"] * 5000), [1] * 5000, 5000),
}


def rate(fn, items, repeat=1) -> float:
    t0 = time.process_time()
    for _ in range(repeat):
        for it in items:
            fn(it)
    return repeat * len(items) / (time.process_time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="problems per measurement")
    args = ap.parse_args()
    n = args.n
    task = get_task("countdown")
    print(f"# Countdown tasks benchmark ({platform.processor() or platform.machine()}, "
          f"Python {sys.version.split()[0]}, n={n})\n")  # fmt: skip

    t0 = time.process_time()
    problems = task.generate(n, seed=0)
    gen_rate = n / (time.process_time() - t0)
    t0 = time.process_time()
    eval_problems = task.generate(n, seed=0, split="eval")
    gen_eval_rate = n / (time.process_time() - t0)

    rows = []
    examples: dict[str, list[dict]] = {}
    t0 = time.process_time()
    examples["cot"] = [task.render(p, "cot", seed=0) for p in problems]
    rows.append(("cot (cold oracle cache)", n / (time.process_time() - t0)))
    t0 = time.process_time()
    for p in problems:
        task.render(p, "cot", seed=1)
    rows.append(("cot (warm)", n / (time.process_time() - t0)))
    for style in ("nocot", "lowq", "verbose"):
        t0 = time.process_time()
        examples[style] = [task.render(p, style, seed=0) for p in problems]
        rows.append((style, n / (time.process_time() - t0)))
    hard = get_task("countdown-hard")
    hard_problems = hard.generate(max(n // 20, 10), seed=0, split="eval")
    t0 = time.process_time()
    hard_cot = [hard.render(p, "cot", seed=0) for p in hard_problems]
    rows.append(
        ("cot, countdown-hard (5-6 numbers)", len(hard_problems) / (time.process_time() - t0))
    )

    print("## Throughput\n")
    print("| what | per second |\n|---|---:|")
    print(f"| problems generated (train split) | {gen_rate:,.0f} |")
    print(f"| problems generated (eval split, 20% of keys) | {gen_eval_rate:,.0f} |")
    for name, r in rows:
        print(f"| traces rendered: {name} | {r:,.0f} |")

    def words(exs):
        return sorted(len(e["response"].split()) for e in exs)

    def pct(xs, q):
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    cot_w = words(examples["cot"])
    hard_w = words(hard_cot)
    backs = [sum(e["type"] == "backtrack" for e in ex["events"]) for ex in examples["cot"]]
    verifies = [sum(e["type"] == "verify" for e in ex["events"]) for ex in examples["cot"]]
    ratio = [
        len(v["response"].split()) / len(c["response"].split())
        for v, c in zip(examples["verbose"], examples["cot"], strict=True)
    ]
    lowq_wrong = [
        not task.score(p, ex["response"])["correct"]
        for p, ex in zip(problems, examples["lowq"], strict=True)
    ]
    kinds = Counter(ex["meta"]["render"]["lowq_error"] for ex in examples["lowq"])
    print("\n## Traces\n")
    print("| statistic | value |\n|---|---:|")
    print(
        f"| cot words: median (p10-p90) | {statistics.median(cot_w):.0f} ({pct(cot_w, 0.1)}-{pct(cot_w, 0.9)}) |"
    )
    print(
        f"| cot words, countdown-hard: median (p10-p90) | {statistics.median(hard_w):.0f} ({pct(hard_w, 0.1)}-{pct(hard_w, 0.9)}) |"
    )
    print(
        f"| cot backtracks per trace (mean) / traces with >= 1 | {statistics.mean(backs):.2f} / {sum(b > 0 for b in backs) / n:.1%} |"
    )
    print(f"| cot verifications per trace (mean) | {statistics.mean(verifies):.2f} |")
    print(
        f"| verbose / cot words (mean, min-max) | {statistics.mean(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}) |"
    )
    print(f"| lowq measured error rate (knob 0.3) | {sum(lowq_wrong) / n:.3f} (near_miss {kinds['near_miss']}, false_claim {kinds['false_claim']}) |")  # fmt: skip

    # Verifier vs baseline on the same answers: right ones, wrong ones, malformed ones.
    cases = []
    for p, ex in zip(eval_problems, examples["cot"], strict=True):
        m = p["meta"]
        cases.append((p["answer"], m["numbers"], m["target"]))
        cases.append((p["answer"], m["numbers"], m["target"] + 1))
        cases.append((ex["response"].split("<answer>")[-1][:-9], m["numbers"], m["target"]))
        cases.append((p["answer"] + ")", m["numbers"], m["target"]))
    agree = sum(verify_countdown(*c)["correct"] == ast_verify(*c)["correct"] for c in cases)
    ours = rate(lambda c: verify_countdown(*c), cases, repeat=3)
    base = rate(lambda c: ast_verify(*c), cases, repeat=3)
    print("\n## Verifier vs an ast.parse-based safe evaluator\n")
    print(f"{len(cases):,} answers (right, wrong target, other expressions, malformed); "
          f"verdicts agree on {agree}/{len(cases)}.\n")  # fmt: skip
    print("| verifier | checks per second |\n|---|---:|")
    print(f"| sftlens `verify_countdown` (tokenizer + recursive descent) | {ours:,.0f} |")
    print(f"| `ast.parse` + whitelist walk | {base:,.0f} |")
    print(f"| ratio (ours / ast) | {ours / base:.2f}x |")
    print("\n| hostile input | sftlens | ast baseline |\n|---|---|---|")
    for name, (expr, nums, target) in HOSTILE.items():
        a = verify_countdown(expr, nums, target)
        try:
            b = ast_verify(expr, nums, target)
            b_txt = "ACCEPTED" if b["correct"] else f"rejected ({b['reason']})"
        except Exception as e:  # a crash is the finding
            b_txt = f"CRASH {type(e).__name__}"
        a_txt = "ACCEPTED" if a["correct"] else f"rejected ({a['reason'][:50]})"
        print(f"| {name} | {a_txt} | {b_txt} |")
    print(
        "\n(Both cap answers at 200 characters. Python's grammar reads `1_0` as 10, so the "
        "baseline accepts it; the other hostile inputs it rejects only because its walk "
        "whitelists node types.)"
    )

    texts = [ex["response"] for ex in examples["cot"]]
    t0 = time.process_time()
    n_claims = sum(len(parse_countdown_trace(t)) for t in texts)
    dt = time.process_time() - t0
    print("\n## Trace parser\n")
    print(f"{n_claims / dt:,.0f} claims/s ({len(texts) / dt:,.0f} cot traces/s, "
          f"{n_claims / len(texts):.1f} claims per trace).")  # fmt: skip


if __name__ == "__main__":
    main()
