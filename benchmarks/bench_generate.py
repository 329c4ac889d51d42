"""Batched generation: sftlens' hf engine against a per-prompt `model.generate` loop.

Both decode greedily the same prompts on a trained toy checkpoint to the same token budget.
The checkpoint stops on its own (EOS) at different lengths per prompt, so the engine's path that
drops finished rows from the batch and the KV cache is timed, and every method must return
exactly the per-prompt loop's tokens (EOS included) or the benchmark fails. The figure is
generated tokens per second; methods run in interleaved rounds and each round gives a paired
ratio against the loop (the median is reported). Also shown: transformers' own batched
`generate` with left padding, the other thing a user might try.

A trained checkpoint is needed (a random model never emits EOS). Make one in ~3 minutes on CPU
(the toy base of the quickstart's tiny scale: pretraining on the base corpus, where every
answer and refusal ends with EOS):

    sftlens data base-corpus --n 6000 --out base.jsonl
    sftlens train -s objective=pretrain -s model=toy-strong -s data=base.jsonl \
      -s max_steps=200 -s max_length=512 -s packing=true -s vocab_size=384 -s lr=3e-3 \
      -s schedule.kind=constant -o toy-base

or use any checkpoint of `sftlens quickstart` (runs/quickstart/models/*/checkpoints/step-*).

Usage:
    .venv/bin/python benchmarks/bench_generate.py --model toy-base/checkpoints/step-000200
    .venv/bin/python benchmarks/bench_generate.py --model DIR --batch-size 32 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a trained checkpoint dir (see above)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of every method")
    ap.add_argument("--skip-hf-batched", action="store_true")
    args = ap.parse_args()

    import torch

    from sftlens.core import load_causal_lm, load_tokenizer
    from sftlens.rollout import HFEngine, Request, SamplingConfig
    from sftlens.tasks import format_prompt, get_task

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_causal_lm(args.model, args.device), load_tokenizer(args.model)
    n_params = sum(p.numel() for p in model.parameters())
    # The eval sets of the toy world, mixed: answers, refusals and helpful replies end at
    # different lengths, so rows finish at different steps.
    third = args.batch_size // 3
    problems = [
        *get_task("countdown").generate(args.batch_size - 2 * third, seed=1, split="eval"),
        *get_task("harmful").generate(third, seed=1, split="eval"),
        *get_task("harmless").generate(third, seed=1, split="eval"),
    ]
    texts = [format_prompt(tok, p["prompt"]) for p in problems]
    budget = args.max_new_tokens
    # EOS is the only stop (no stop strings), so `model.generate` stops at the same token.
    sampling = SamplingConfig(max_new_tokens=budget, stop=[])
    engine = HFEngine(model=model, tokenizer=tok, batch_size=args.batch_size)
    eos = sorted(engine.eos_ids)

    engine.generate([Request(texts[0], 0)], SamplingConfig(max_new_tokens=4, stop=[]))  # warm-up
    if not args.skip_hf_batched:
        tok.padding_side = "left"
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            args.device
        )

    def run_ours():
        out = engine.generate([Request(t, 0) for t in texts], sampling)
        return [list(c.token_ids) for c in out]

    def run_loop():
        res = []
        with torch.inference_mode():
            for t in texts:
                ids = torch.tensor([engine.encode(t)], device=args.device)
                out = model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=budget,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=tok.pad_token_id,
                )
                res.append(out[0, ids.shape[1] :].tolist())
        return res

    def run_hf_batched():
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=budget,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=tok.pad_token_id,
            )
        gen = out[:, enc["input_ids"].shape[1] :].tolist()
        return [row[: _until_eos(row, eos)] for row in gen]

    methods = {
        "per-prompt `model.generate` loop": run_loop,
        f"sftlens hf engine, batch {args.batch_size}": run_ours,
    }
    if not args.skip_hf_batched:
        methods[f"transformers batched `generate`, batch {args.batch_size}"] = run_hf_batched
    # Rounds interleave the methods: a shared, loaded machine slows whichever method happens
    # to run during a burst of other work, so each round gives a paired ratio.
    times: dict[str, list[float]] = {name: [] for name in methods}
    outputs: dict[str, list] = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    names = list(methods)
    loop_tokens = outputs[names[0]]
    stopped = sum(bool(row) and row[-1] in eos for row in loop_tokens)
    lengths = sorted(len(row) for row in loop_tokens)
    n_loop = sum(map(len, loop_tokens))

    print(
        f"model: {args.model or 'toy Llama'} ({n_params / 1e6:.2f}M params), device {args.device}, "
        f"torch threads {torch.get_num_threads()}, {platform.machine()}"
    )
    print(
        f"prompts: {len(texts)} (countdown, harmful, harmless eval), greedy, max_new_tokens "
        f"{budget}; {stopped}/{len(texts)} stop at EOS, lengths {lengths[0]}-{lengths[-1]} "
        f"(median {statistics.median(lengths):.0f})"
    )
    bad = [n for n in names[1:] if outputs[n] != loop_tokens]
    for name in names[1:]:
        same = sum(a == b for a, b in zip(outputs[name], loop_tokens, strict=True))
        print(f"{name}: identical to the per-prompt loop on {same}/{len(texts)} prompts")
    print(f"{args.repeats} interleaved rounds\n")
    print(
        "| method | tokens | best seconds | tokens/s (best) | vs loop (median of paired rounds) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in names:
        n = sum(map(len, outputs[name]))
        paired = [tl / t for tl, t in zip(times[names[0]], times[name], strict=True)]
        t = min(times[name])
        print(f"| {name} | {n} | {t:.2f} | {n / t:.0f} | {statistics.median(paired):.2f}x |")
    if bad or n_loop == 0:
        raise SystemExit(f"outputs differ from the per-prompt loop: {', '.join(bad)}")


def _until_eos(row: list[int], eos: list[int]) -> int:
    for i, t in enumerate(row):
        if t in eos:
            return i + 1
    return len(row)


if __name__ == "__main__":
    main()
