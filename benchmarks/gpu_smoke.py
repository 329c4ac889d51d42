"""GPU smoke test: vLLM vs HF greedy outputs, one bf16 training step, activation caching on CUDA.

Builds its own model (a random Qwen3 config of ~`--hidden`/`--layers` size with the toy
tokenizer, saved to a temporary dir), so it needs no download. Run it through
`benchmarks/gpu_smoke.sh`, which names the device first. Without CUDA it says so and exits 0
(`--require-gpu` makes that exit 3), so it is safe in CI.

Usage:
    .venv/bin/python benchmarks/gpu_smoke.py [--out benchmarks/results/gpu_smoke.json]

Reports, as JSON lines on stdout and in --out:
- device, torch, transformers, vllm versions;
- greedy agreement: share of prompts whose vLLM completion equals the HF engine's, both
  greedy at bf16 (vLLM skipped, and said so, when not installed);
- one bf16 training step (AdamW, batch x seq random tokens): tokens/s over timed steps after a
  warm-up, and MFU = 6 * parameters * tokens/s / the device's dense bf16 peak;
- activation caching on CUDA: rows/s of the streaming cache, and the bridge's max |logit|
  difference against the HF model on the same batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# Dense bf16 peak FLOP/s by device name (vendor datasheets, without sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def _peak(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def build_model(work: Path, hidden: int, layers: int) -> Path:
    """A random Qwen3 with the toy tokenizer (chat template included), saved to `work`."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from sftlens.tasks import build_tokenizer, get_task

    cd = get_task("countdown")
    texts = [cd.render(p, "cot", seed=0)["response"] for p in cd.generate(300, seed=0)]
    tok = build_tokenizer(texts, vocab_size=1024)
    cfg = Qwen3Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 128),
        head_dim=64,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    d = work / "qwen3-smoke"
    Qwen3ForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def greedy_agreement(model_dir: Path, n: int, max_new_tokens: int, device: str) -> dict:
    from sftlens.rollout import SamplingConfig
    from sftlens.rollout._engines import Request, make_engine
    from sftlens.tasks import format_prompt, get_task

    problems = get_task("countdown").generate(n, seed=1, split="eval")
    sampling = SamplingConfig.from_dict({"temperature": 0.0, "max_new_tokens": max_new_tokens})
    outs = {}
    for engine in ("hf", "vllm"):
        try:
            e = make_engine(engine, str(model_dir), device, "bfloat16", 64, 0)
        except Exception as err:  # vLLM absent or unable to start: say so, keep going
            outs[engine] = f"skipped: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
            continue
        reqs = [Request(format_prompt(e.tokenizer, p["prompt"]), 0) for p in problems]
        t0 = time.perf_counter()
        res = e.generate(reqs, sampling)
        dt = time.perf_counter() - t0
        e.close()
        outs[engine] = {
            "texts": [c.text for c in res],
            "tokens_per_s": sum(c.n_tokens for c in res) / dt,
        }
    row = {"check": "greedy_vllm_vs_hf", "n_prompts": n, "max_new_tokens": max_new_tokens}
    for k, v in outs.items():
        row[f"{k}_tokens_per_s"] = v["tokens_per_s"] if isinstance(v, dict) else v
    if all(isinstance(v, dict) for v in outs.values()):
        same = [a == b for a, b in zip(outs["hf"]["texts"], outs["vllm"]["texts"], strict=True)]
        row["identical_share"] = sum(same) / len(same)
    return row


def train_step(model_dir: Path, batch: int, seq: int, steps: int, device: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    model = model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device, generator=g)
    times, losses = [], []
    for i in range(steps + 1):  # step 0 warms up kernels and the allocator
        sync()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i:
            times.append(time.perf_counter() - t0)
            losses.append(float(loss))
    tps = batch * seq / (sum(times) / len(times))
    peak = _peak(torch.cuda.get_device_name()) if cuda else None
    return {
        "check": "bf16_train_step",
        "parameters": n_params,
        "batch": batch,
        "seq": seq,
        "timed_steps": steps,
        "tokens_per_s": tps,
        "mfu": 6 * n_params * tps / peak if peak else None,
        "peak_bf16_flops": peak,
        "loss_first_last": [losses[0], losses[-1]],
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }


def cache_on_cuda(model_dir: Path, work: Path, n_problems: int, device: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from sftlens.core import resolve_one
    from sftlens.probes import ProbeConfig, load_lens
    from sftlens.probes._analyses import cache_checkpoint, countdown_examples

    ck = resolve_one(model_dir)
    cfg = ProbeConfig.from_dict({"device": device, "n_problems": n_problems, "batch_size": 32})
    examples = countdown_examples(n_problems, 0, "eval")
    t0 = time.perf_counter()
    cache, info = cache_checkpoint(ck, examples, work / "cache", cfg)
    dt = time.perf_counter() - t0
    lens, tok, _ = load_lens(ck.path, device=device)
    hf = AutoModelForCausalLM.from_pretrained(ck.path, dtype=torch.float32).to(device).eval()
    ids = tok([examples[0]["prompt"] + examples[0]["response"]], return_tensors="pt").input_ids
    with torch.no_grad():
        ids = ids.to(device)
        diff = (lens(ids) - hf(ids).logits).abs().max().item()
    return {
        "check": "activation_cache_cuda",
        "rows": cache.stats.n_rows,
        "hooks": len(cache.hooks),
        "seconds": dt,
        "rows_per_s": cache.stats.n_rows / dt,
        "bridge_vs_hf_max_abs_logit_diff": diff,
        "transformer_lens": info["transformer_lens"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="benchmarks/results/gpu_smoke.json")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--n-prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cache-problems", type=int, default=64)
    ap.add_argument("--require-gpu", action="store_true", help="exit 3 when there is no CUDA")
    ap.add_argument(
        "--cpu-check", action="store_true", help="run the code paths on CPU (no figures)"
    )
    args = ap.parse_args()

    import torch
    import transformers

    device = "cpu" if args.cpu_check else "cuda"
    if not args.cpu_check and not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here; skipped (run it on a GPU machine).")
        return 3 if args.require_gpu else 0
    try:
        import vllm

        vllm_version = vllm.__version__
    except ImportError:
        vllm_version = None
    rows = [
        {
            "check": "device",
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (code check)",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "transformers": transformers.__version__,
            "vllm": vllm_version,
        }
    ]
    print(json.dumps(rows[0]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = build_model(work, args.hidden, args.layers)
        for fn in (
            lambda: greedy_agreement(model_dir, args.n_prompts, args.max_new_tokens, device),
            lambda: train_step(model_dir, args.batch, args.seq, args.steps, device),
            lambda: cache_on_cuda(model_dir, work, args.cache_problems, device),
        ):
            rows.append(fn())
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"gpu_smoke: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
