"""Batched generation: sftlens' hf engine against a per-prompt `model.generate` loop.

Both decode greedily the same prompts on the same checkpoint to the same token budget, so they
produce the same tokens (checked); the figure is generated tokens per second. Also shown:
transformers' own batched `generate` with left padding, the other thing a user might try.

Usage:
    .venv/bin/python benchmarks/bench_generate.py                 # toy ~2M-param Llama, CPU
    .venv/bin/python benchmarks/bench_generate.py --model runs/toy/models/strong/checkpoints/step-000100
    .venv/bin/python benchmarks/bench_generate.py --batch-size 32 --max-new-tokens 64 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import time


def toy_model(seed: int = 0):
    """A random ~2M-parameter Llama with the toy tokenizer trained on route-task text."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sftlens.tasks import build_tokenizer, get_task

    task = get_task("route")
    probs = task.generate(200, seed=seed, split="train")
    texts = [task.render(p, "cot", seed)["response"] + p["prompt"] for p in probs]
    tok = build_tokenizer(texts, vocab_size=512)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return LlamaForCausalLM(cfg).eval(), tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="checkpoint dir (default: a toy random Llama)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; each method keeps its best")
    ap.add_argument("--skip-hf-batched", action="store_true")
    args = ap.parse_args()

    import torch

    from sftlens.core import load_causal_lm, load_tokenizer
    from sftlens.rollout import HFEngine, Request, SamplingConfig
    from sftlens.tasks import format_prompt, get_task

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        model, tok = load_causal_lm(args.model, args.device), load_tokenizer(args.model)
    else:
        model, tok = toy_model()
        model = model.to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    problems = get_task("route").generate(args.batch_size, seed=1, split="eval", n_nodes=8)
    texts = [format_prompt(tok, p["prompt"]) for p in problems]
    budget = args.max_new_tokens
    # No stop strings and an EOS the random model rarely picks: both sides run the full budget
    # unless EOS comes, and then both stop at the same token.
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
    # Rounds interleave the methods, and each keeps its best time: a shared, loaded machine
    # slows whichever method happens to run during a burst of other work.
    best: dict[str, float] = {}
    outputs: dict[str, list] = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    names = list(methods)
    loop_tokens, ours = outputs[names[0]], outputs[names[1]]
    same = sum(a == b[: len(a)] for a, b in zip(ours, loop_tokens, strict=True))
    rows = [(name, sum(len(x) for x in outputs[name]), best[name]) for name in names]
    n_loop, t_loop = rows[0][1], rows[0][2]

    print(
        f"model: {args.model or 'toy Llama'} ({n_params / 1e6:.2f}M params), device {args.device}, "
        f"torch threads {torch.get_num_threads()}, {platform.machine()}"
    )
    print(f"prompts: {len(texts)} route problems, greedy, max_new_tokens {budget}")
    print(f"greedy outputs identical to the per-prompt loop: {same}/{len(texts)}")
    print(f"best of {args.repeats} interleaved rounds per method\n")
    print("| method | tokens | seconds | tokens/s | vs loop |")
    print("|---|---:|---:|---:|---:|")
    base = n_loop / t_loop
    for name, n, t in rows:
        print(f"| {name} | {n} | {t:.2f} | {n / t:.0f} | {n / t / base:.1f}x |")


def _until_eos(row: list[int], eos: list[int]) -> int:
    for i, t in enumerate(row):
        if t in eos:
            return i + 1
    return len(row)


if __name__ == "__main__":
    main()
