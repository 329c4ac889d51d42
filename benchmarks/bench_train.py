"""Our trainer vs TRL's SFTTrainer: tokens/s and loss curve on the same SFT job.

Same tiny model (one saved random toy-weak checkpoint, loaded by both), same Countdown `cot`
data, same masking (loss on the completion only, eos appended), same hyperparameters (AdamW
betas 0.9/0.999, constant LR, no warmup, clip 1.0, batch, steps, max_length, fp32, CPU).
Each trainer runs in its own subprocess (both build an Accelerator). The data order differs
(each trainer shuffles with its own sampler), so losses are compared as the mean of the last
10 steps, not step by step.

TRL is not a dependency of sftlens. Install it only to run this benchmark:

    .venv/bin/pip install --no-deps trl      # keeps the installed torch/transformers

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py [--steps 60] [--batch-size 8]

Reports wall-clock tokens/s and tokens per CPU-second (with one thread, the CPU seconds
measure the work even on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(work: Path, n: int, seed: int) -> None:
    """The shared inputs: SFT data, a tokenizer and one random model checkpoint."""
    from sftlens.core import write_jsonl
    from sftlens.tasks import build_tokenizer, format_prompt, get_task
    from sftlens.train import build_toy_model

    cd = get_task("countdown")
    records = [cd.render(p, "cot", seed=seed) for p in cd.generate(n, seed=seed)]
    write_jsonl(work / "sft.jsonl", records)
    tok = build_tokenizer(
        [format_prompt(None, r["prompt"], chat=False) + r["response"] for r in records], 512
    )
    model = build_toy_model("toy-weak", tok, seed=seed)
    model.save_pretrained(work / "model")
    tok.save_pretrained(work / "model")


def run_ours(work: Path, args: argparse.Namespace, group_by_length: bool) -> dict:
    from sftlens.core import read_jsonl
    from sftlens.train import TrainConfig, train

    out = work / f"ours-{'grouped' if group_by_length else 'random'}"
    cfg = TrainConfig.from_dict(
        {
            "objective": "sft",
            "model": str(work / "model"),
            "data": str(work / "sft.jsonl"),
            "out_dir": str(out),
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "betas": [0.9, 0.999],
            "schedule": {"kind": "constant", "warmup_frac": 0.0},
            "max_length": args.max_length,
            "group_by_length": group_by_length,
            "grid": {"kind": "list", "steps": [args.steps]},
            "log_every": 1,
            "progress": False,
            "seed": args.seed,
        }
    )
    t0, c0 = time.perf_counter(), time.process_time()
    train(cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    metrics = list(read_jsonl(out / "metrics.jsonl"))
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens": metrics[-1]["tokens_seen"],
        "losses": [m["loss"] for m in metrics],
    }


def run_trl(work: Path, args: argparse.Namespace) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from sftlens.core import load_tokenizer, read_jsonl
    from sftlens.tasks import format_prompt

    tok = load_tokenizer(work / "model")
    rows = [
        {"prompt": format_prompt(tok, r["prompt"]), "completion": r["response"]}
        for r in read_jsonl(work / "sft.jsonl")
    ]
    model = AutoModelForCausalLM.from_pretrained(work / "model", attn_implementation="sdpa")
    config = SFTConfig(
        output_dir=str(work / "trl"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        max_grad_norm=1.0,
        max_length=args.max_length,
        packing=False,
        completion_only_loss=True,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        disable_tqdm=True,
        seed=args.seed,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    n_tokens = getattr(trainer.state, "num_input_tokens_seen", 0) or None
    return {"wall_s": wall, "cpu_s": cpu, "tokens": n_tokens, "losses": losses}


def trl_tokens(work: Path, args: argparse.Namespace) -> int:
    """Non-pad tokens TRL's steps consume (its sampler draws steps*batch examples, no drop)."""
    from sftlens.core import load_tokenizer
    from sftlens.train import TrainConfig
    from sftlens.train._data import load_units

    cfg = TrainConfig.from_dict(
        {"data": str(work / "sft.jsonl"), "max_steps": 1, "max_length": args.max_length}
    )
    units, stats = load_units(cfg, load_tokenizer(work / "model"))
    mean = stats["tokens"] / len(units)
    return int(mean * args.steps * args.batch_size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n", type=int, default=480, help="SFT examples.")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-length", type=int, default=768)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", choices=["ours-random", "ours-grouped", "trl"], default=None)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    if args.worker:
        work = Path(args.work)
        if args.worker == "trl":
            res = run_trl(work, args)
            if not res["tokens"]:
                res["tokens"] = trl_tokens(work, args)
        else:
            res = run_ours(work, args, group_by_length=args.worker == "ours-grouped")
        print("RESULT " + json.dumps(res))
        return

    try:
        import trl  # noqa: F401
    except ImportError:
        print("TRL is not installed; skipping (pip install --no-deps trl to run this benchmark).")
        return
    work = Path(tempfile.mkdtemp(prefix="bench_train-"))
    prepare(work, args.n, args.seed)
    results = {}
    for worker in ("ours-random", "trl", "ours-grouped"):
        cmd = [sys.executable, __file__, "--worker", worker, "--work", str(work)]
        cmd += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
        cmd += [
            "--lr",
            str(args.lr),
            "--max-length",
            str(args.max_length),
            "--seed",
            str(args.seed),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(f"{worker} failed:\n{proc.stderr[-3000:]}")
            return
        results[worker] = json.loads(line[-1][len("RESULT ") :])
        r = results[worker]
        print(f"{worker}: {r['wall_s']:.1f}s, {r['tokens'] / r['wall_s']:.0f} tok/s", flush=True)

    def tail(losses: list[float]) -> float:
        return sum(losses[-10:]) / len(losses[-10:])

    ref = results["trl"]
    print(
        f"\n{args.steps} steps x batch {args.batch_size}, toy-weak, {args.n} Countdown cot examples"
    )
    print(
        "| trainer | wall s | tokens/s | tokens per CPU-s | speed vs TRL (wall / CPU) | "
        "loss (first) | loss (last-10 mean) | vs TRL |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ref_tps, ref_tpc = ref["tokens"] / ref["wall_s"], ref["tokens"] / ref["cpu_s"]
    for name, r in results.items():
        tps, tpc = r["tokens"] / r["wall_s"], r["tokens"] / r["cpu_s"]
        print(
            f"| {name} | {r['wall_s']:.1f} | {tps:.0f} | {tpc:.0f} | "
            f"{tps / ref_tps:.2f}x / {tpc / ref_tpc:.2f}x | {r['losses'][0]:.4f} | "
            f"{tail(r['losses']):.4f} | {tail(r['losses']) / tail(ref['losses']) - 1:+.2%} |"
        )
    (work / "results.json").write_text(json.dumps(results))
    curves = {k: v["losses"] for k, v in results.items()}
    (work / "loss_curves.json").write_text(json.dumps(curves))
    print(f"\nloss curves: {work / 'loss_curves.json'}")


if __name__ == "__main__":
    main()
