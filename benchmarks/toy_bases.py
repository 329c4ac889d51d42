"""How much training does the toy world need? SFT a toy model on the lab's Countdown `cot` data.

Trains a zoo model (from random init, or from a pretrained base with ``--base``) on the
`cot` examples of the ``countdown_lab`` spec (its generation knobs and render options, so the
problems are the lab's), then greedy-decodes held-out (``split="eval"``) problems at each
checkpoint and scores them with the Countdown verifier. This is the calibration behind the
lab's tiny and small presets (benchmarks/results/experiments.md): accuracy by step, tokens,
seconds.

Usage:
    .venv/bin/python benchmarks/toy_bases.py --model toy-strong --steps 800 --grid 200,400,600,800
    .venv/bin/python benchmarks/toy_bases.py --model toy-weak --steps 800 --batch-size 8
    .venv/bin/python benchmarks/toy_bases.py --base runs/quickstart/models/toy-strong --steps 480
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def evaluate(ckpt: str, problems: list[dict], max_new_tokens: int, batch_size: int = 50) -> dict:
    """Greedy-decode every problem and score it with the Countdown verifier."""
    import torch

    from sftlens.core import load_causal_lm, load_tokenizer
    from sftlens.tasks import format_prompt, get_task

    cd = get_task("countdown")
    tok = load_tokenizer(ckpt)
    tok.padding_side = "left"
    model = load_causal_lm(ckpt)
    correct, lengths, sample = 0, [], ""
    for i in range(0, len(problems), batch_size):
        chunk = problems[i : i + batch_size]
        enc = tok(
            [format_prompt(tok, p["prompt"]) for p in chunk],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for p, text in zip(chunk, texts, strict=True):
            if "</answer>" in text:  # stop at the answer, as a stop string would
                text = text[: text.index("</answer>") + len("</answer>")]
            correct += bool(cd.score(p, text)["correct"])
            lengths.append(len(text))
            sample = sample or text
    return {
        "accuracy": correct / len(problems),
        "mean_chars": sum(lengths) / len(lengths),
        "sample": sample,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="toy-strong", help="Toy zoo name (random init).")
    ap.add_argument("--base", default=None, help="A pretrained checkpoint dir instead.")
    ap.add_argument("--n", type=int, default=1600, help="Distinct cot training problems.")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--grid", default="", help="Checkpoint steps, e.g. 200,400 (default: last).")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512, help="Packed row length.")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--vocab", type=int, default=384)
    ap.add_argument("--eval-n", type=int, default=100, help="Held-out Countdown problems.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/toy_bases")
    args = ap.parse_args()

    from sftlens.core import find_checkpoints, write_jsonl
    from sftlens.experiments import load_spec
    from sftlens.tasks import build_tokenizer, get_task
    from sftlens.train import TrainConfig, train

    cot = load_spec("countdown_lab").dataset("cot")
    cd = get_task("countdown")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    problems = cd.generate(args.n, seed=args.seed + 1, split="train", **cot.knobs)
    examples = [cd.render(p, "cot", seed=i, **cot.render) for i, p in enumerate(problems)]
    write_jsonl(out / "sft.jsonl", examples)
    extra: dict = {"model": args.base}
    if args.base is None:
        tok = build_tokenizer(
            [e["prompt"] + "\n" + e["response"] for e in examples], vocab_size=args.vocab
        )
        tok.save_pretrained(str(out / "tokenizer"))
        extra = {"model": args.model, "tokenizer": str(out / "tokenizer")}
    grid = [int(x) for x in args.grid.split(",")] if args.grid else [args.steps]
    cfg = TrainConfig.from_dict(
        {
            "objective": "sft",
            "data": str(out / "sft.jsonl"),
            "out_dir": str(out / "sft"),
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "packing": True,
            "lr": args.lr,
            "seed": args.seed,
            "schedule": {"kind": "cosine", "warmup_frac": 0.05},
            "grid": {"kind": "list", "steps": grid},
            "progress": False,
            "log_every": 20,
            **extra,
        }
    )
    t0 = time.perf_counter()
    train(cfg)
    train_s = time.perf_counter() - t0
    eval_problems = cd.generate(args.eval_n, seed=args.seed + 7, split="eval", **cot.knobs)
    rows = []
    for ck in find_checkpoints(out / "sft"):
        r = evaluate(ck.path, eval_problems, max_new_tokens=352)
        rows.append({"step": ck.step, "tokens": ck.tokens_seen, "loss": ck.loss, **r})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "sample"}), flush=True)
    lines = [
        f"`{args.base or args.model}`, batch {args.batch_size} x {args.max_length} packed, "
        f"LR {args.lr} cosine, {args.n} problems; {args.eval_n} held-out problems, greedy; "
        f"training {train_s:.0f} s.",
        "",
        "| step | tokens | loss | accuracy | mean chars |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        loss = "" if r["loss"] is None else f"{r['loss']:.3f}"
        lines.append(
            f"| {r['step']} | {r['tokens'] or 0} | {loss} | {r['accuracy']:.2f} | "
            f"{r['mean_chars']:.0f} |"
        )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)
    print("\nlast checkpoint, first completion:\n" + rows[-1]["sample"])


if __name__ == "__main__":
    main()
