"""Toy bases: pretrain toy-weak and toy-strong, SFT both on Countdown `cot`, score all four.

The check behind the toy world: with the same recipe, the strong base learns Countdown from
long-CoT SFT clearly better than the weak one, and both end above their bases. Greedy decoding
on held-out (``split="eval"``) problems, stopped at eos, scored by the Countdown verifier.

Usage:
    .venv/bin/python benchmarks/toy_bases.py --scale tiny     # the quickstart budget (~4 min)
    .venv/bin/python benchmarks/toy_bases.py --scale small    # bigger models and data
    .venv/bin/python benchmarks/toy_bases.py --scale tiny --out runs/toy_bases --eval-n 100

Prints a markdown table (accuracy, losses, wall times and CPU seconds: on a shared machine the
CPU seconds of a 1-thread run, OMP_NUM_THREADS=1, measure the work) and writes it to
``<out>/results.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SCALES = {
    # name: (weak model, strong model, corpus docs, pretrain steps, sft examples, sft steps)
    "tiny": {
        "models": ("toy-weak", "toy-strong"),
        "corpus": 12000,
        "pretrain": {"max_steps": 60, "batch_size": 16, "max_length": 512, "lr": 3e-3},
        "sft_n": 1600,
        "sft": {"max_steps": 100, "batch_size": 16, "max_length": 768, "lr": 2e-3},
    },
    "small": {
        "models": ("toy-weak-small", "toy-strong-small"),
        "corpus": 40000,
        "pretrain": {"max_steps": 250, "batch_size": 16, "max_length": 512, "lr": 2e-3},
        "sft_n": 6000,
        "sft": {"max_steps": 400, "batch_size": 16, "max_length": 768, "lr": 1e-3},
    },
}


def write_data(out: Path, scale: dict, seed: int) -> tuple[Path, Path, list[dict]]:
    """Base corpus, Countdown cot SFT set, and held-out eval problems."""
    from sftlens.core import write_jsonl
    from sftlens.tasks import build_base_corpus, get_task

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "base_corpus.jsonl"
    write_jsonl(corpus, build_base_corpus(scale["corpus"], seed))
    cd = get_task("countdown")
    # A seed apart from the corpus's, so SFT problems are new to the base.
    problems = cd.generate(scale["sft_n"], seed=seed + 1000, split="train")
    sft = out / "countdown_cot.jsonl"
    write_jsonl(sft, (cd.render(p, "cot", seed=seed) for p in problems))
    return corpus, sft, problems


def evaluate(ckpt: str, problems: list[dict], max_new_tokens: int, batch_size: int = 50) -> dict:
    """Greedy-decode every problem and score it with the Countdown verifier."""
    import torch

    from sftlens.core import load_causal_lm, load_tokenizer
    from sftlens.tasks import format_prompt, get_task

    cd = get_task("countdown")
    tok = load_tokenizer(ckpt)
    tok.padding_side = "left"
    model = load_causal_lm(ckpt)
    correct, lengths, samples = 0, [], []
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
            if len(samples) < 2:
                samples.append(text[:300])
    return {
        "accuracy": correct / len(problems),
        "mean_chars": sum(lengths) / len(lengths),
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    ap.add_argument("--out", default=None, help="Work folder (default runs/toy_bases-<scale>).")
    ap.add_argument("--eval-n", type=int, default=100, help="Held-out Countdown problems.")
    ap.add_argument("--max-new-tokens", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from sftlens.core import find_checkpoints
    from sftlens.tasks import get_task
    from sftlens.train import TrainConfig, count_parameters, load_model_and_tokenizer, train

    scale = SCALES[args.scale]
    out = Path(args.out or f"runs/toy_bases-{args.scale}")
    corpus, sft_data, _ = write_data(out, scale, args.seed)
    eval_problems = get_task("countdown").generate(args.eval_n, seed=args.seed, split="eval")
    rows = []
    for name in scale["models"]:
        t0, c0 = time.perf_counter(), time.process_time()
        pre = train(
            TrainConfig.from_dict(
                {
                    "objective": "pretrain",
                    "model": name,
                    "data": str(corpus),
                    "out_dir": str(out / name / "pretrain"),
                    "packing": True,
                    "schedule": {"kind": "cosine", "warmup_frac": 0.05},
                    "seed": args.seed,
                    "log_every": 10,
                    "resume": True,
                    **scale["pretrain"],
                }
            )
        )
        t_pre, c_pre = time.perf_counter() - t0, time.process_time() - c0
        base = find_checkpoints(pre)[-1]
        t0, c0 = time.perf_counter(), time.process_time()
        sft = train(
            TrainConfig.from_dict(
                {
                    "objective": "sft",
                    "model": base.path,
                    "data": str(sft_data),
                    "out_dir": str(out / name / "sft_cot"),
                    "schedule": {"kind": "cosine", "warmup_frac": 0.05},
                    "seed": args.seed,
                    "log_every": 10,
                    "resume": True,
                    **scale["sft"],
                }
            )
        )
        t_sft, c_sft = time.perf_counter() - t0, time.process_time() - c0
        final = find_checkpoints(sft)[-1]
        model, _ = load_model_and_tokenizer(final.path)
        t0 = time.perf_counter()
        ev_base = evaluate(base.path, eval_problems, args.max_new_tokens)
        ev_sft = evaluate(final.path, eval_problems, args.max_new_tokens)
        t_eval = time.perf_counter() - t0
        rows.append(
            {
                "model": name,
                "params": count_parameters(model),
                "pretrain_loss": base.loss,
                "pretrain_tokens": base.tokens_seen,
                "sft_loss": final.loss,
                "sft_tokens": final.tokens_seen,
                "acc_base": ev_base["accuracy"],
                "acc_sft": ev_sft["accuracy"],
                "chars_base": ev_base["mean_chars"],
                "chars_sft": ev_sft["mean_chars"],
                "pretrain_s": t_pre,
                "sft_s": t_sft,
                "pretrain_cpu_s": c_pre,
                "sft_cpu_s": c_sft,
                "eval_s": t_eval,
                "sample_sft": ev_sft["samples"][0],
            }
        )
        print(json.dumps(rows[-1], indent=1), flush=True)
    lines = [
        f"Scale `{args.scale}`, {args.eval_n} held-out Countdown problems, greedy decoding.",
        "",
        "| model | params | pretrain loss | SFT loss | acc base | acc SFT (cot) | "
        "mean chars base / SFT | pretrain s (CPU s) | SFT s (CPU s) | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.2f}M | {r['pretrain_loss']:.3f} | "
            f"{r['sft_loss']:.3f} | {r['acc_base']:.2f} | {r['acc_sft']:.2f} | "
            f"{r['chars_base']:.0f} / {r['chars_sft']:.0f} | {r['pretrain_s']:.0f} "
            f"({r['pretrain_cpu_s']:.0f}) | {r['sft_s']:.0f} ({r['sft_cpu_s']:.0f}) | "
            f"{r['eval_s']:.0f} |"
        )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
