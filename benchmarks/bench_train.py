"""Our trainer vs TRL's SFTTrainer: tokens/s and loss curve on the same SFT job.

Same model (one saved random checkpoint of a toy-zoo size, loaded by both), same Countdown
`cot` data, same masking (loss on the completion only, eos appended), same hyperparameters
(AdamW betas 0.9/0.999, constant LR, no warmup, clip 1.0, batch, steps, max_length, fp32, CPU).
Each trainer runs in its own subprocess (both build an Accelerator). The data order differs
(each trainer shuffles with its own sampler), so losses are compared as the mean of the last
10 steps, not step by step.

Both are timed over the same span: from loading the model to the trained weights saved on disk
(tokenizing the data and writing the final checkpoint included, for TRL `save_model`). The
default `--model toy-weak` (0.16M parameters) mostly measures per-step Python overhead; use
`--model toy-strong-small` (~7M) for a size where the forward and backward dominate. Rounds
(`--rounds`) run the three trainers interleaved and report the median of paired ratios.

TRL is not a dependency of sftlens. Install it only to run this benchmark:

    .venv/bin/pip install --no-deps trl      # keeps the installed torch/transformers

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py [--steps 60] [--batch-size 8]
        [--model toy-strong-small] [--rounds 2]

Reports wall-clock tokens/s and tokens per CPU-second (with one thread, the CPU seconds
measure the work even on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(work: Path, n: int, seed: int, model_name: str) -> None:
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
    model = build_toy_model(model_name, tok, seed=seed)
    model.save_pretrained(work / "model")
    tok.save_pretrained(work / "model")


def run_ours(work: Path, args: argparse.Namespace, group_by_length: bool) -> dict:
    # Import what train() imports lazily before the clock starts, as TRL's imports are.
    import accelerate  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401

    from sftlens.core import read_jsonl
    from sftlens.tasks import build_tokenizer  # noqa: F401
    from sftlens.train import TrainConfig, train

    out = work / f"ours-{'grouped' if group_by_length else 'random'}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each round
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
    train(cfg)  # loads the model, tokenizes, trains, writes the final checkpoint
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

    # The same span as ours: model load, data preparation, training, the final save.
    t0, c0 = time.perf_counter(), time.process_time()
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
    trainer.train()
    trainer.save_model(str(work / "trl" / "final"))
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
    ap.add_argument(
        "--model", default="toy-weak", help="toy zoo size (sftlens train --list-models)"
    )
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds of the 3 trainers")
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
    prepare(work, args.n, args.seed, args.model)
    trainers = ("ours-random", "trl", "ours-grouped")
    runs: dict[str, list[dict]] = {t: [] for t in trainers}
    for rnd in range(args.rounds):  # interleaved: load bursts hit every trainer alike
        for worker in trainers:
            cmd = [sys.executable, __file__, "--worker", worker, "--work", str(work)]
            cmd += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
            cmd += ["--lr", str(args.lr), "--max-length", str(args.max_length)]
            cmd += ["--seed", str(args.seed), "--model", args.model]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                print(f"{worker} failed:\n{proc.stderr[-3000:]}")
                return
            r = json.loads(line[-1][len("RESULT ") :])
            runs[worker].append(r)
            print(
                f"round {rnd + 1} {worker}: {r['wall_s']:.1f}s, "
                f"{r['tokens'] / r['wall_s']:.0f} tok/s",
                flush=True,
            )

    def tail(losses: list[float]) -> float:
        return sum(losses[-10:]) / len(losses[-10:])

    def tps(r: dict) -> float:
        return r["tokens"] / r["wall_s"]

    def tpc(r: dict) -> float:
        return r["tokens"] / r["cpu_s"]

    from sftlens.core import load_causal_lm

    n_params = sum(p.numel() for p in load_causal_lm(work / "model").parameters())
    ref = runs["trl"]
    print(
        f"\n{args.steps} steps x batch {args.batch_size}, {args.model} ({n_params / 1e6:.2f}M "
        f"params), {args.n} Countdown cot examples, {args.rounds} interleaved round(s); timed "
        "from model load to the trained weights on disk, for both"
    )
    print(
        "| trainer | wall s (median) | tokens/s (median) | tokens per CPU-s (median) | "
        "vs TRL, median of paired rounds (wall / CPU) | loss (first) | loss (last-10 mean) | "
        "vs TRL |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        w = statistics.median(r["wall_s"] for r in rs)
        pw = statistics.median(tps(r) / tps(t) for r, t in zip(rs, ref, strict=True))
        pc = statistics.median(tpc(r) / tpc(t) for r, t in zip(rs, ref, strict=True))
        loss = rs[0]["losses"]
        print(
            f"| {name} | {w:.1f} | {statistics.median(map(tps, rs)):.0f} | "
            f"{statistics.median(map(tpc, rs)):.0f} | {pw:.2f}x / {pc:.2f}x | {loss[0]:.4f} | "
            f"{tail(loss):.4f} | {tail(loss) / tail(ref[0]['losses']) - 1:+.2%} |"
        )
    (work / "results.json").write_text(json.dumps(runs))
    curves = {k: v[0]["losses"] for k, v in runs.items()}
    (work / "loss_curves.json").write_text(json.dumps(curves))
    print(f"\nloss curves: {work / 'loss_curves.json'}")


if __name__ == "__main__":
    main()
