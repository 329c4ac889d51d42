"""Benchmark: extracting and selecting a refusal direction for one checkpoint.

Measures, on toy-world prompts and randomly initialised Llama-style models:

1. time to extract the difference-in-means candidates (every layer x post-instruction position)
   with sftlens's HF hooks, against the alternative a user would otherwise write:
   TransformerLens 4.x ``TransformerBridge.run_with_cache`` on the ``blocks.{i}.hook_resid_pre``
   hooks (same batches, same left padding), as a ratio; the two must agree numerically;
2. time to select the direction (Arditi et al. 2024: three hooked forward passes per candidate);
3. how both grow with the number of layers and with the number of prompts.

Run: ``.venv/bin/python benchmarks/bench_refusal.py`` (about a minute or two on 2 CPU cores;
``--quick`` for a smaller grid). Timings are medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path


def build_model(n_layers: int, d_model: int, tok, seed: int = 0):
    """The zoo's toy builder at this size (4 heads, 4x MLP)."""
    from sftlens.train import build_toy_model

    return build_toy_model(
        "toy-tiny",
        tok,
        seed=seed,
        hidden_size=d_model,
        intermediate_size=4 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
    ).eval()


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def tl_mean_diffs(bridge, tok, fmt, harmful, harmless, batch_size: int):
    """The TransformerLens way: run_with_cache on resid_pre hooks, then mean differences."""
    import torch

    from sftlens.probes._refusal import encode, left_padded_batches

    n_layers = bridge.cfg.n_layers
    names = [f"blocks.{i}.hook_resid_pre" for i in range(n_layers)]
    means = []
    for prompts in (harmful, harmless):
        total = None
        ids = encode(tok, fmt, prompts)
        for _idx, inp, mask, _pos in left_padded_batches(ids, batch_size, tok.pad_token_id):
            with torch.no_grad():
                _, cache = bridge.run_with_cache(inp, attention_mask=mask, names_filter=names)
            acts = torch.stack([cache[n][:, -fmt.n_positions :, :] for n in names], dim=2)
            s = acts.double().sum(0)
            total = s if total is None else total + s
        means.append(total / len(prompts))
    return (means[0] - means[1]).float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller grid")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    import torch

    from sftlens.probes import prompt_format, refusal_directions, refusal_token_ids
    from sftlens.probes import select_direction as select
    from sftlens.probes._lens import load_lens
    from sftlens.tasks import build_tokenizer, instruction_prompts

    torch.set_num_threads(2)
    layer_grid = (2, 4, 8) if args.quick else (2, 4, 8, 16)
    prompt_grid = (16, 32) if args.quick else (16, 32, 64, 128)
    max_n = max(prompt_grid)
    harm = [r["prompt"] for r in instruction_prompts("harmful", max_n + 32, 0, split="train")]
    safe = [r["prompt"] for r in instruction_prompts("harmless", max_n + 32, 0, split="train")]
    tok = build_tokenizer(harm + safe, vocab_size=600)
    fmt = prompt_format(tok)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch threads "
        f"{torch.get_num_threads()}, d_model {args.d_model}, batch {args.batch_size}, "
        f"{fmt.n_positions} post-instruction positions, val 16+16 prompts\n"
    )
    rows = []
    configs = [(n_layers, 32) for n_layers in layer_grid] + [(4, n) for n in prompt_grid if n != 32]
    with tempfile.TemporaryDirectory() as tmp:
        for n_layers, n in configs:
            model = build_model(n_layers, args.d_model, tok)
            ids = refusal_token_ids(tok, model)
            h, s = harm[:n], safe[:n]
            t_ours, dirs = median_time(
                lambda m=model, h=h, s=s: refusal_directions(m, tok, h, s, fmt, args.batch_size),
                args.repeats,
            )
            path = Path(tmp) / f"m{n_layers}"
            model.save_pretrained(path)
            tok.save_pretrained(path)
            bridge, _, _ = load_lens(path, hf_model=model)
            t_tl, tl_diffs = median_time(
                lambda b=bridge, h=h, s=s: tl_mean_diffs(b, tok, fmt, h, s, args.batch_size),
                args.repeats,
            )
            err = float((tl_diffs - dirs.mean_diffs).abs().max())
            t_sel, sel = median_time(
                lambda m=model, d=dirs, ids=ids: select(
                    m, tok, d, harm[max_n : max_n + 16], safe[max_n : max_n + 16], fmt, ids,
                    batch_size=args.batch_size,
                ),
                1,
            )  # fmt: skip
            rows.append((n_layers, n, t_ours, t_tl, t_tl / t_ours, err, t_sel, len(sel.candidates)))
            print(
                f"layers {n_layers:2d} prompts {n:3d}/kind: extract {t_ours:6.3f}s "
                f"(TransformerLens {t_tl:6.3f}s, {t_tl / t_ours:4.2f}x; max |diff| {err:.1e}); "
                f"select {t_sel:6.2f}s over {len(sel.candidates)} candidates",
                flush=True,
            )
            del bridge, model
    print(
        "\n| layers | prompts/kind | extract (hooks) s | extract (TL run_with_cache) s | TL / hooks | select s | candidates |"
    )
    print("|---|---|---|---|---|---|---|")
    for n_layers, n, t_ours, t_tl, ratio, _err, t_sel, n_c in rows:
        print(
            f"| {n_layers} | {n} | {t_ours:.3f} | {t_tl:.3f} | {ratio:.2f}x | {t_sel:.2f} | {n_c} |"
        )


if __name__ == "__main__":
    main()
