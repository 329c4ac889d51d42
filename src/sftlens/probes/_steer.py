"""The causal check: steer generation along the dead-end direction and count what changes.

A forward hook on one HF decoder layer adds ``alpha * norm * unit`` to that layer's output (the
TransformerLens ``blocks.{layer}.hook_resid_post``) at every position, prompt and generated
alike; `norm` is the distance between the dead-end and live class means, so ``alpha = 1`` moves
a live state's activation about as far as a dead end's. Greedy generation, then the tagger
counts backtracks and the task scorer says whether the answer is right. If the direction is
what the model uses to decide to backtrack, adding it should raise the backtracking rate and
subtracting it lower it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sftlens.core import (
    DataError,
    check_safetensors,
    load_causal_lm,
    load_tokenizer,
    write_parquet,
    write_text,
)
from sftlens.probes._analyses import BACKTRACK_LABEL, DIRECTIONS_FILE

STEER_TABLE = "steer.parquet"


def decoder_layers(model: Any) -> Any:
    """The list of decoder blocks of an HF causal LM (Llama/Qwen/Mistral/GPT-2/NeoX layouts)."""
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise DataError(f"{type(model).__name__}: cannot find its decoder layers to steer.")


@contextlib.contextmanager
def steering(model: Any, layer: int, vector: Any) -> Iterator[None]:
    """Add `vector` (``[d_model]``) to the output of decoder layer `layer` while active."""
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise DataError(f"layer {layer} out of range; the model has {len(layers)} layers.")

    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (output[0] + vector.to(output[0].dtype),) + tuple(output[1:])
        return output + vector.to(output.dtype)

    handle = layers[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def steer_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    vector: Any = None,
    layer: int = 0,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    intervention: Any = None,
) -> list[dict]:
    """Greedy completions of `prompts`, steered by `vector` at `layer` (none when None).

    Args:
        model: an HF causal LM (eval mode).
        tokenizer: its tokenizer.
        prompts: raw prompts; each is wrapped with `format_prompt`.
        vector: ``[d_model]`` tensor added to the layer's output, or None.
        layer: decoder layer index (TransformerLens ``blocks.{layer}.hook_resid_post``).
        max_new_tokens: generation budget.
        batch_size: prompts per `generate` call (left-padded).
        intervention: a context manager to generate under instead of the steering vector
            (e.g. `directional_ablation`).

    Returns:
        One ``{"completion", "n_tokens", "finish_reason"}`` per prompt.
    """
    import torch

    from sftlens.tasks import format_prompt

    device = next(model.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation pads on the left
    add_special = getattr(tokenizer, "chat_template", None) is None
    out: list[dict] = []
    ctx = steering(model, layer, vector.to(device)) if vector is not None else intervention
    with ctx or contextlib.nullcontext(), torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            texts = [format_prompt(tokenizer, p) for p in prompts[i : i + batch_size]]
            enc = tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=add_special
            )
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            for row in gen[:, enc["input_ids"].shape[1] :].tolist():
                n = len(row)
                stopped = tokenizer.eos_token_id in row
                if stopped:
                    n = row.index(tokenizer.eos_token_id)
                out.append(
                    {
                        "completion": tokenizer.decode(row[:n], skip_special_tokens=True),
                        "n_tokens": n,
                        "finish_reason": "stop" if stopped else "length",
                    }
                )
    tokenizer.padding_side = side
    return out


def load_direction(path: str | os.PathLike, hook: str) -> tuple[Any, float]:
    """``(unit [d_model], norm)`` of a saved dead-end direction for `hook`."""
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        p = p / DIRECTIONS_FILE
    if not p.is_file():
        raise DataError(f"{p}: no directions file; run `sftlens probe dead-end` first.")
    check_safetensors(p)
    t = load_file(str(p))
    if hook not in t:
        known = sorted(k for k in t if not k.endswith(".norm"))
        raise DataError(f"{p}: no direction for {hook!r}; has {', '.join(known)}.")
    return t[hook], float(t[f"{hook}.norm"][0])


def _tag_counts(texts: list[str]) -> list[dict]:
    from sftlens.trace_tagger import Tagger

    return list(Tagger().tag_many(texts))


def causal_check(
    checkpoint: str | os.PathLike,
    directions: str | os.PathLike,
    layer: int,
    alphas: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
    problems: list[dict] | None = None,
    n_problems: int = 50,
    seed: int = 0,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    device: str = "cpu",
    hook_template: str = "blocks.{layer}.hook_resid_post",
    out: str | os.PathLike | None = None,
) -> Any:
    """Steer along the dead-end direction at `layer` for each alpha; measure behaviour.

    Args:
        checkpoint: the checkpoint to steer (the one whose directions were fitted).
        directions: its ``directions.safetensors`` (or the folder holding it).
        layer: the layer to steer (see `best_layer`).
        alphas: steering strengths in units of the class-mean separation (0 = unsteered).
        problems: Countdown problems (default: `n_problems` eval problems from `seed`).
        n_problems: problems when generated.
        seed: problem generation.
        max_new_tokens: generation budget.
        batch_size: prompts per `generate` call.
        device: torch device.
        hook_template: where the direction was read (must be a decoder layer's output).
        out: write the table here (parquet + CSV) when given.

    Returns:
        Long table ``alpha, layer, metric, value, n``; metrics ``backtrack_rate`` (share of
        completions with a backtrack), ``backtracks_per_trace``, ``accuracy``, ``n_tokens``,
        and ``backtrack_precision`` when any backtrack could be resolved.
    """
    import numpy as np
    import pandas as pd

    from sftlens.tasks import countdown_behaviour_checks, get_task

    task = get_task("countdown")
    if problems is None:
        problems = task.generate(n_problems, seed, split="eval")
    unit, norm = load_direction(directions, hook_template.format(layer=layer))
    model = load_causal_lm(checkpoint, device=device, dtype="float32")
    tok = load_tokenizer(checkpoint)
    rows = []
    for alpha in alphas:
        vec = None if alpha == 0 else unit * (alpha * norm)
        gens = steer_generate(
            model, tok, [p["prompt"] for p in problems], vec, layer, max_new_tokens, batch_size
        )
        texts = [g["completion"] for g in gens]
        tags = _tag_counts(texts)
        nb = np.array([t["counts"].get(BACKTRACK_LABEL, 0) for t in tags], dtype=float)
        acc = [bool(task.score(p, t).get("correct")) for p, t in zip(problems, texts, strict=True)]
        prec = []
        for p, t, tg in zip(problems, texts, tags, strict=True):
            v = countdown_behaviour_checks(t, p, tg["spans"]).get("backtrack_precision")
            if v is not None:
                prec.append(v)
        metrics = {
            "backtrack_rate": (float((nb > 0).mean()), len(nb)),
            "backtracks_per_trace": (float(nb.mean()), len(nb)),
            "accuracy": (float(np.mean(acc)), len(acc)),
            "n_tokens": (float(np.mean([g["n_tokens"] for g in gens])), len(gens)),
        }
        if prec:
            metrics["backtrack_precision"] = (float(np.mean(prec)), len(prec))
        for m, (v, n) in metrics.items():
            rows.append({"alpha": float(alpha), "layer": layer, "metric": m, "value": v, "n": n})
    table = pd.DataFrame(rows).assign(checkpoint=str(checkpoint), direction_norm=norm)
    if out is not None:
        write_parquet(table, out)
        write_text(Path(out).with_suffix(".csv"), table.to_csv(index=False))
    return table
