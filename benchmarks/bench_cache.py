"""Selective streaming cache vs the ways a user would otherwise collect the same activations.

Same model, same teacher-forced Countdown traces, same batches. Reports tokens/s of

* a bare forward pass of the TransformerLens bridge (logits, no hooks) — the ceiling,
* the HF model's own forward (reference),
* `sftlens.probes.cache_activations`: ``resid_post`` at every layer, only at step-end
  positions, streamed to safetensors shards on disk,
* ``run_with_cache(names_filter=<the same hooks>)``, then index the same positions and keep
  them in memory: the fair baseline, what a user who knows TransformerLens writes,
* ``run_with_cache`` of every hook, then the same indexing: the naive baseline (the one the
  first version of this benchmark compared against),
* nnsight (when importable): a ``trace`` of the HF model saving each decoder layer's output at
  the same positions (the same tensors as ``resid_post``),

and the peak resident memory above the loaded model (``VmHWM`` reset before each run) of the
caching methods for N and 4N traces, each in a fresh process.

Methods run in interleaved rounds (every method once per round), so load on a shared machine
hits all of them alike; ratios are taken within each round and their median is reported.

Run:  .venv/bin/python benchmarks/bench_cache.py [--n 64] [--layers 4] [--d-model 256]
nnsight is not a dependency; to include it, install it beside (not into) the environment:
      pip install --target /tmp/nnsight --no-deps nnsight greenlet websocket-client zstandard
      PYTHONPATH=/tmp/nnsight .venv/bin/python benchmarks/bench_cache.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT_PREFIX = "RESULT "
CACHING = ("sftlens_cache", "run_with_cache_filtered", "run_with_cache_all", "nnsight")
METHODS = ("bridge_forward", "hf_forward", *CACHING)


def _has_nnsight() -> bool:
    import importlib.util

    return importlib.util.find_spec("nnsight") is not None


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def build_model(root: Path, layers: int, d_model: int, n_examples: int) -> Path:
    """A random toy Llama (the zoo's builder at this size) with the toy tokenizer, saved as a
    checkpoint dir."""
    from sftlens.probes import countdown_examples
    from sftlens.tasks import build_tokenizer
    from sftlens.train import build_toy_model

    texts = [e["prompt"] + e["response"] for e in countdown_examples(200, seed=123)]
    tok = build_tokenizer(texts, vocab_size=512)
    heads = max(1, d_model // 64)
    model = build_toy_model(
        "toy-tiny",
        tok,
        seed=0,
        hidden_size=d_model,
        intermediate_size=4 * d_model,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
    )
    d = root / "model"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _items(tok, n: int):
    from sftlens.probes import countdown_examples, dead_end_items

    # A fixed set of 16 traces, cycled: N and 4N then differ only in how many there are.
    base = list(dead_end_items(tok, countdown_examples(16, seed=7), kinds=("step_end",)))
    from sftlens.probes import CacheItem

    for i in range(n):
        it = base[i % len(base)]
        yield CacheItem(f"{it.trace_id}-{i}", it.group, it.input_ids, it.positions, it.rows)


def _batches(items, batch_size: int, pad_id: int):
    import torch

    items = sorted(items, key=lambda it: len(it.input_ids))
    for i in range(0, len(items), batch_size):
        b = items[i : i + batch_size]
        seq = max(len(it.input_ids) for it in b)
        ids = torch.full((len(b), seq), pad_id, dtype=torch.long)
        for j, it in enumerate(b):
            ids[j, : len(it.input_ids)] = torch.tensor(it.input_ids)
        yield b, ids


def run_method(method, lens, tok, items, hooks, batch_size, out_dir, shard_traces) -> None:
    """One pass of `method` over `items`."""
    import torch

    from sftlens.probes import cache_activations

    pad = tok.pad_token_id
    if method == "bridge_forward":
        with torch.inference_mode():
            for _, ids in _batches(items, batch_size, pad):
                lens(ids, return_type="logits")
    elif method == "hf_forward":
        hf = lens.original_model
        with torch.inference_mode():
            for _, ids in _batches(items, batch_size, pad):
                hf(input_ids=ids, use_cache=False)
    elif method == "sftlens_cache":
        cache_activations(
            lens, iter(items), hooks, out_dir, batch_size=batch_size, shard_traces=shard_traces
        )
    elif method in ("run_with_cache_filtered", "run_with_cache_all"):
        names = hooks if method == "run_with_cache_filtered" else None
        kept: dict[str, list] = {h: [] for h in hooks}
        with torch.inference_mode():
            for b, ids in _batches(items, batch_size, pad):
                _, cache = lens.run_with_cache(ids, names_filter=names)
                bi = torch.tensor([j for j, it in enumerate(b) for _ in it.positions])
                pi = torch.tensor([p for it in b for p in it.positions])
                for h in hooks:
                    kept[h].append(cache[h][bi, pi].clone())
                del cache
        {h: torch.cat(v) for h, v in kept.items()}
    elif method == "nnsight":
        run_nnsight(lens, tok, items, batch_size)
    else:
        raise SystemExit(f"unknown method {method}")


def run_nnsight(lens, tok, items, batch_size: int) -> None:
    """nnsight's trace of the HF model: each decoder layer's output at the same positions."""
    import torch
    from nnsight import LanguageModel

    lm = LanguageModel(lens.original_model, tokenizer=tok)
    kept: list[list] = [[] for _ in lm.model.layers]
    with torch.inference_mode():
        for b, ids in _batches(items, batch_size, tok.pad_token_id):
            bi = torch.tensor([j for j, it in enumerate(b) for _ in it.positions])
            pi = torch.tensor([p for it in b for p in it.positions])
            saved = []
            with lm.trace(ids):
                for layer in lm.model.layers:
                    out = layer.output
                    h = out[0] if isinstance(out, tuple) else out
                    saved.append(h[bi, pi].save())
            for i, t in enumerate(saved):
                kept[i].append(t.clone())
    [torch.cat(v) for v in kept]


def worker(a) -> list[dict]:
    """Measurements in this process: ``speed`` (every method, interleaved, best of repeats)
    or one method's peak RSS above the loaded model."""
    import shutil

    import torch

    from sftlens.probes import hook_names, load_lens

    lens, tok, info = load_lens(a.model)
    hooks = hook_names("resid_post", range(info.n_layers))
    items = list(_items(tok, a.n))
    n_tokens = sum(len(it.input_ids) for it in items)
    with torch.inference_mode():  # warm-up batch (allocator, lazy imports), not timed
        lens(next(_batches(items, a.batch_size, tok.pad_token_id))[1], return_type="logits")
    methods = [m for m in METHODS if m != "nnsight" or _has_nnsight()]
    methods = methods if a.worker == "speed" else [a.worker]
    repeats = a.repeats if a.worker == "speed" else 1
    rounds: list[dict] = []
    for r in range(repeats):
        for m in methods:  # interleaved, so background load hits every method alike
            out = Path(a.out) / f"{m}-{r}"
            base_rss = _rss_kb("VmRSS")
            _reset_peak()
            t0 = time.perf_counter()
            # Speed runs use the default shard size; memory runs a small one, so that N and 4N
            # traces both span several shards.
            shard = 256 if a.worker == "speed" else a.shard_traces
            run_method(m, lens, tok, items, hooks, a.batch_size, out, shard)
            dt = time.perf_counter() - t0
            peak = (_rss_kb("VmHWM") - base_rss) / 1024
            shutil.rmtree(out, ignore_errors=True)
            rounds.append({"method": m, "round": r, "n_traces": a.n, "tokens": n_tokens,
                           "seconds": dt, "tokens_per_s": n_tokens / dt, "peak_rss_mb": peak})  # fmt: skip
    return rounds


def _spawn(a, worker: str, model_dir, n: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "TOKENIZERS_PARALLELISM": "false"}
        # A fixed mmap threshold: large tensors are always mmapped and returned on free, so
        # peak RSS measures what is held, not glibc's heap growth while it tunes the threshold.
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 20))
        cmd = [sys.executable, __file__, "--worker", worker, "--model", str(model_dir)]
        cmd += ["--n", str(n), "--batch-size", str(a.batch_size), "--out", tmp]
        cmd += ["--repeats", str(a.repeats), "--shard-traces", str(a.shard_traces)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        raise SystemExit(f"{worker} failed:\n{proc.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="traces (the memory check also runs 4n)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds of every method")
    ap.add_argument("--shard-traces", type=int, default=32, help="traces per cache shard")
    ap.add_argument("--model", default=None, help="checkpoint dir (default: a random toy Llama)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        import torch

        torch.set_num_threads(a.threads)
        print(RESULT_PREFIX + json.dumps(worker(a)))
        return
    import statistics

    with tempfile.TemporaryDirectory() as root:
        model = a.model or build_model(Path(root), a.layers, a.d_model, a.n)
        rounds = _spawn(a, "speed", model, a.n)
        methods = [m for m in METHODS if any(r["method"] == m for r in rounds)]
        by = {(r["method"], r["round"]): r["tokens_per_s"] for r in rounds}
        best = {m: max(v for (k, _), v in by.items() if k == m) for m in methods}
        ceiling = best["bridge_forward"]
        print(
            f"model: {a.layers} layers x d_model {a.d_model}; batch {a.batch_size}; "
            f"shard {a.shard_traces} traces; threads {a.threads}; {a.n} traces "
            f"({rounds[0]['tokens']} tokens); {a.repeats} interleaved rounds"
        )
        print("| method | best tokens/s | vs bridge forward |")
        print("|---|---|---|")
        for m in methods:
            print(f"| {m} | {best[m]:.0f} | {best[m] / ceiling:.2f} |", flush=True)
        print("\n| sftlens_cache vs | median of paired per-round ratios | range |")
        print("|---|---|---|")
        for m in methods:
            if m == "sftlens_cache":
                continue
            ratios = [by[("sftlens_cache", r)] / by[(m, r)] for r in range(a.repeats)]
            print(
                f"| {m} | {statistics.median(ratios):.2f}x | "
                f"{min(ratios):.2f}-{max(ratios):.2f}x |",
                flush=True,
            )
        # Peak RSS above the loaded model, each run in a fresh process.
        print("\n| method | traces | peak RSS above the loaded model (MB) |")
        print("|---|---|---|")
        for m in (m for m in CACHING if m in methods):
            for n in (a.n, 4 * a.n):
                mb = _spawn(a, m, model, n)[0]["peak_rss_mb"]
                print(f"| {m} | {n} | {mb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
