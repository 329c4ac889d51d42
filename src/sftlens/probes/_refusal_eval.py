"""Refusal analysis of every checkpoint: direction, drift, separation and causal effects.

For each checkpoint: the difference-in-means candidates (every layer x post-instruction
position), the selected direction, its cosine to the base's and to a reference direction, the
AUROC of the projection on held-out harmful vs harmless prompts, refusal rates from greedy
generations, and the same rates under directional ablation (harmful prompts) and activation
addition (harmless prompts). Results go to a long-format table; directions to safetensors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sftlens.core import (
    Checkpoint,
    DataError,
    atomic_path,
    auroc,
    check_input,
    check_model_dir,
    checkpoint_dirname,
    environment,
    fingerprint,
    load_causal_lm,
    load_tokenizer,
    parse_shard,
    read_parquet,
    resolve_one,
    resolve_series,
    shard_block,
    shard_dir,
    warn,
    write_json,
    write_parquet,
)
from sftlens.probes._refusal import (
    Directions,
    PromptFormat,
    RefusalDirectionConfig,
    Selection,
    _pad_id,
    activation_addition,
    collect_residuals,
    directional_ablation,
    encode,
    filter_by_refusal,
    last_logprobs,
    left_padded_batches,
    no_intervention,
    prompt_format,
    refusal_directions,
    refusal_scores,
    refusal_token_ids,
    select_direction,
)

DIRECTIONS_DIR = "directions"
PARTS_DIR = "parts"
TABLE_FILE = "refusal.parquet"
CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"
TASK = "refusal"
MODE = "hf-hooks"
TABLE_COLUMNS = [
    "model",
    "step",
    "checkpoint",
    "task",
    "metric",
    "value",
    "layer",
    "position",
    "split",
]


# --------------------------------------------------------------------------- prompts


@dataclasses.dataclass
class PromptSets:
    """Instructions by kind and split: ``train`` (difference in means), ``val`` (selection),
    ``eval`` (held out: AUROC and refusal rates)."""

    harmful_train: list[str]
    harmless_train: list[str]
    harmful_val: list[str]
    harmless_val: list[str]
    harmful_eval: list[str]
    harmless_eval: list[str]

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in dataclasses.asdict(self).items()}


def _texts(records: Sequence[Any], where: str) -> list[str]:
    out = []
    for i, r in enumerate(records):
        text = r if isinstance(r, str) else (r.get("instruction") or r.get("prompt"))
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: item {i} has no instruction text.")
        out.append(text)
    return out


def _split_file(items: list[str], sizes: tuple[int, int, int], seed: int, where: str) -> list:
    items = list(items)
    random.Random(seed).shuffle(items)
    need = sum(sizes)
    if len(items) < need:
        # Too few for the configured sizes: keep the proportions.
        if len(items) < 3:
            raise DataError(
                f"{where}: {len(items)} instructions; need at least 3 (train/val/eval)."
            )
        val = max(1, round(len(items) * sizes[1] / need))
        ev = max(1, round(len(items) * sizes[2] / need))
        asked = sizes
        sizes = (len(items) - val - ev, val, ev)
        warn(f"{where}: {len(items)} prompts, fewer than the {need} asked (train/val/eval "
             f"{asked[0]}/{asked[1]}/{asked[2]}); using {sizes[0]}/{sizes[1]}/{sizes[2]}.")  # fmt: skip
    a, b = sizes[0], sizes[0] + sizes[1]
    return [items[:a], items[a:b], items[b : b + sizes[2]]]


def load_prompt_sets(cfg: RefusalDirectionConfig) -> PromptSets:
    """The harmful and harmless instructions for the analysis.

    With ``cfg.harmful``/``cfg.harmless`` files (CSV, JSON or JSONL with an ``instruction``
    column): each shuffled with ``cfg.seed`` and split into train/val/eval. Without: the toy
    world's prompts, train/val from the training templates and eval from held-out templates.
    """
    sizes = (cfg.n_train, cfg.n_val, cfg.n_eval)
    if cfg.harmful:
        from sftlens.tasks import load_instructions

        harm, safe = (
            _split_file(_texts(load_instructions(path, kind), path), sizes, cfg.seed, path)
            for path, kind in ((cfg.harmful, "harmful"), (cfg.harmless, "harmless"))
        )
    else:
        from sftlens.tasks import instruction_prompts

        harm, safe = [], []
        for kind, dest in (("harmful", harm), ("harmless", safe)):
            train = [
                r["prompt"]
                for r in instruction_prompts(kind, cfg.n_train + cfg.n_val, cfg.seed, split="train")
            ]
            ev = [
                r["prompt"] for r in instruction_prompts(kind, cfg.n_eval, cfg.seed, split="eval")
            ]
            dest.extend([train[: cfg.n_train], train[cfg.n_train :], ev])
    return PromptSets(harm[0], safe[0], harm[1], safe[1], harm[2], safe[2])


# --------------------------------------------------------------------------- metrics


def generate(
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    instructions: Sequence[str],
    max_new_tokens: int = 24,
    batch_size: int = 16,
) -> list[str]:
    """Greedy completions (special tokens removed), in the order of ``instructions``.

    Hooks active around the call (ablation, addition) apply to every generated token.
    """
    import torch

    pad = _pad_id(tokenizer)
    ids = encode(tokenizer, fmt, instructions)
    out: list[str] = [""] * len(ids)
    dev = next(model.parameters()).device
    with torch.no_grad():
        for idx, inp, mask, _pos in left_padded_batches(ids, batch_size, pad, dev):
            gen = model.generate(
                input_ids=inp,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
            texts = tokenizer.batch_decode(gen[:, inp.shape[1] :], skip_special_tokens=True)
            for i, t in zip(idx, texts, strict=True):
                out[i] = t
    return out


def make_judge(phrases: Sequence[str] = ()) -> Any:
    """The rollout stage's refusal-phrase judge (its default phrases when ``phrases`` is empty)."""
    from sftlens.rollout import RefusalJudge

    return RefusalJudge(phrases) if phrases else RefusalJudge()


def refusal_rate(texts: Sequence[str], judge: Any) -> float:
    """Fraction of ``texts`` the judge marks as refusals."""
    if not texts:
        return float("nan")
    return sum(judge.judge(t)["refused"] for t in texts) / len(texts)


def separation_auroc(positive: Any, negative: Any) -> float:
    """AUROC of projections, ``positive`` (harmful) vs ``negative`` (harmless); NaN when a
    side is empty."""
    pos, neg = [float(x) for x in positive], [float(x) for x in negative]
    return auroc([1] * len(pos) + [0] * len(neg), pos + neg)


def _cos(a: Any, b: Any) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


# --------------------------------------------------------------------------- one checkpoint


@dataclasses.dataclass
class CheckpointResult:
    """One checkpoint's analysis: candidates, selection and table rows."""

    directions: Directions
    selection: Selection
    rows: list[dict]


def analyze_checkpoint(
    model: Any,
    tokenizer: Any,
    sets: PromptSets,
    cfg: RefusalDirectionConfig,
    base: tuple[Any, int, int] | None = None,
    reference: Any = None,
) -> CheckpointResult:
    """Directions, selection and metrics of one model.

    Args:
        model: HF causal LM in eval mode.
        tokenizer: its tokenizer.
        sets: the prompts.
        cfg: the analysis config.
        base: ``(mean_diffs [n_positions, n_layers, d_model], position, layer)`` of the base
            model, or None when this model is the base (cosines to itself are 1).
        reference: a ``[d_model]`` direction to compare to, or None.

    Returns:
        `CheckpointResult`; rows have keys metric, value, layer, position, split.
    """
    import torch

    fmt = prompt_format(tokenizer, cfg.template, cfg.positions)
    tok_ids = refusal_token_ids(tokenizer, model, cfg.refusal_tokens)
    harm_tr, safe_tr = sets.harmful_train, sets.harmless_train
    if cfg.filter_prompts:
        harm_tr = filter_by_refusal(
            model, tokenizer, harm_tr, fmt, tok_ids, True, cfg.batch_size, "harmful prompts"
        )
        safe_tr = filter_by_refusal(
            model, tokenizer, safe_tr, fmt, tok_ids, False, cfg.batch_size, "harmless prompts"
        )
    dirs = refusal_directions(model, tokenizer, harm_tr, safe_tr, fmt, cfg.batch_size)
    sel = select_direction(
        model, tokenizer, dirs, sets.harmful_val, sets.harmless_val, fmt, tok_ids,
        cfg.kl_threshold, cfg.induce_threshold, cfg.prune_layer_frac, cfg.batch_size,
    )  # fmt: skip
    P = dirs.n_positions
    base_diffs, base_pos, base_layer = (
        base if base is not None else (dirs.mean_diffs, sel.position, sel.layer)
    )
    if base_diffs.shape != dirs.mean_diffs.shape:
        raise DataError(
            f"base direction has shape {tuple(base_diffs.shape)} but this checkpoint's is "
            f"{tuple(dirs.mean_diffs.shape)}; compare checkpoints of one architecture and template."
        )
    if reference is not None and reference.shape[-1] != dirs.mean_diffs.shape[-1]:
        raise DataError(
            f"reference direction has {reference.shape[-1]} dimensions, the model "
            f"{dirs.mean_diffs.shape[-1]}; give a direction of the same model family."
        )
    rows: list[dict] = []

    def add(
        metric: str,
        value: float,
        layer: int | None = None,
        pos: int | None = None,
        split: str = "eval",
    ) -> None:
        rows.append(
            {
                "metric": metric,
                "value": float(value),
                "layer": layer,
                "position": pos,
                "split": split,
            }
        )

    # Held-out activations: AUROC of every candidate's projection, harmful vs harmless.
    pad = _pad_id(tokenizer)
    acts = [
        collect_residuals(model, encode(tokenizer, fmt, s), P, cfg.batch_size, pad)
        for s in (sets.harmful_eval, sets.harmless_eval)
    ]
    unit = dirs.mean_diffs / dirs.mean_diffs.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    proj = [torch.einsum("npld,pld->npl", a, unit) for a in acts]
    base_unit = base_diffs / base_diffs.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    for p in range(P):
        for layer in range(dirs.n_layers):
            pos = p - P
            add(
                "layer_auroc",
                separation_auroc(proj[0][:, p, layer], proj[1][:, p, layer]),
                layer,
                pos,
            )
            add(
                "layer_cosine_to_base",
                _cos(dirs.mean_diffs[p, layer], base_diffs[p, layer]),
                layer,
                pos,
                "train",
            )
            add("layer_norm", float(dirs.mean_diffs[p, layer].norm()), layer, pos, "train")
            if reference is not None:
                add(
                    "layer_cosine_to_reference",
                    _cos(dirs.mean_diffs[p, layer], reference),
                    layer,
                    pos,
                    "train",
                )
    for c in sel.candidates:
        for key in ("ablation_score", "addition_score", "kl", "passed"):
            add(f"candidate_{key}", float(c[key]), c["layer"], c["position"], "val")

    # The selected direction.
    sp, sl = sel.position, sel.layer
    add("auroc", separation_auroc(proj[0][:, sp + P, sl], proj[1][:, sp + P, sl]), sl, sp)
    b_unit = base_unit[base_pos + P, base_layer]
    add(
        "auroc_base_direction",
        separation_auroc(
            acts[0][:, base_pos + P, base_layer] @ b_unit,
            acts[1][:, base_pos + P, base_layer] @ b_unit,
        ),
        base_layer,
        base_pos,
    )
    add(
        "cosine_to_base", _cos(sel.direction, base_diffs[base_pos + P, base_layer]), sl, sp, "train"
    )
    if reference is not None:
        add("cosine_to_reference", _cos(sel.direction, reference), sl, sp, "train")
    add("direction_norm", float(sel.direction.norm()), sl, sp, "train")
    add("selection_filtered", float(sel.filtered), sl, sp, "val")
    add("n_prompts_harmful", len(harm_tr), split="train")
    add("n_prompts_harmless", len(safe_tr), split="train")

    # Refusal: next-token scores, then generations with and without interventions.
    for kind, prompts in (("harmful", sets.harmful_eval), ("harmless", sets.harmless_eval)):
        sc = refusal_scores(
            last_logprobs(model, encode(tokenizer, fmt, prompts), cfg.batch_size, pad), tok_ids
        )
        add(f"refusal_score_{kind}", float(sc.mean()))
    judge = make_judge(cfg.refusal_phrases)
    runs = (
        ("refusal_rate_harmful", sets.harmful_eval, no_intervention(), None),
        ("refusal_rate_harmless", sets.harmless_eval, no_intervention(), None),
        (
            "refusal_rate_harmful_ablated",
            sets.harmful_eval,
            directional_ablation(model, sel.direction),
            sl,
        ),
        (
            "refusal_rate_harmless_added",
            sets.harmless_eval,
            activation_addition(model, sel.direction, sl, prompt_only=cfg.addition_prompt_only),
            sl,
        ),
    )
    for metric, prompts, ctx, layer in runs:
        with ctx:
            texts = generate(model, tokenizer, fmt, prompts, cfg.max_new_tokens, cfg.batch_size)
        add(metric, refusal_rate(texts, judge), layer, sp if layer is not None else None)
    return CheckpointResult(dirs, sel, rows)


# --------------------------------------------------------------------------- saved directions


def save_direction(
    path: str | os.PathLike, result: CheckpointResult, metadata: dict[str, Any]
) -> Path:
    """Write the selected direction (``direction``, ``[d_model]``) and every candidate
    (``mean_diffs``, ``[n_positions, n_layers, d_model]``) as safetensors, atomically.

    Metadata (all strings): layer, position, filtered, plus ``metadata`` (model, mode, versions).
    """
    from safetensors.torch import save_file

    meta = {
        k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in metadata.items()
    }
    meta.update(
        layer=str(result.selection.layer),
        position=str(result.selection.position),
        filtered=json.dumps(result.selection.filtered),
        n_positions=str(result.directions.n_positions),
        n_layers=str(result.directions.n_layers),
    )
    tensors = {
        "direction": result.selection.direction.float().contiguous(),
        "mean_diffs": result.directions.mean_diffs.float().contiguous(),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_direction(path: str | os.PathLike) -> tuple[Any, dict[str, str], Any]:
    """Read a saved direction: ``(direction [d_model], metadata, mean_diffs or None)``.

    Any safetensors file with a ``direction`` tensor, or with a single 1-D tensor, is accepted
    (e.g. a direction saved from an instruct model by another tool).
    """
    from safetensors import safe_open

    p = check_input(path, ".safetensors direction file")
    try:
        with safe_open(str(p), framework="pt") as f:
            keys = list(f.keys())
            meta = dict(f.metadata() or {})
            if "direction" in keys:
                vec = f.get_tensor("direction")
            elif len(keys) == 1 and f.get_slice(keys[0]).get_shape().__len__() == 1:
                vec = f.get_tensor(keys[0])
            else:
                raise DataError(
                    f"{p}: no 'direction' tensor (has {', '.join(keys) or 'none'}); save the "
                    "direction under the key 'direction'."
                )
            diffs = f.get_tensor("mean_diffs") if "mean_diffs" in keys else None
    except DataError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise DataError(f"{p}: not a readable safetensors file ({type(e).__name__}).") from None
    if vec.ndim != 1:
        raise DataError(f"{p}: 'direction' has shape {tuple(vec.shape)}; expected [d_model].")
    return vec.float(), meta, diffs


# --------------------------------------------------------------------------- every checkpoint


def _file_stem(ckpt: Checkpoint) -> str:
    if ckpt.final or ckpt.step is None:  # a run's final model may share its last step
        return "final" if ckpt.final else Path(ckpt.path).name
    return checkpoint_dirname(ckpt.step)


def refusal_report(
    run_or_model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: RefusalDirectionConfig | None = None,
    shard: str | None = None,
) -> Any:
    """Analyse every checkpoint of a run (or one model dir) and write the results.

    Writes ``out_dir/directions/<step-NNNNNN>.safetensors`` (selected direction + all
    candidates, with metadata), ``out_dir/refusal.parquet`` (long format: model, step,
    checkpoint, task, metric, value, layer, position, split), plots, the resolved config and a
    manifest. A checkpoint already analysed with the same settings is read back, not redone.

    Args:
        run_or_model_dir: a run dir (``checkpoints/step-*``) or one model dir.
        out_dir: where outputs go.
        cfg: the analysis config (defaults: toy-world prompts).
        shard: ``K/N``: the base plus block K of the other checkpoints, into
            ``<out_dir>/shard-K-of-N/`` (join with `merge_refusal_shards`).

    Returns:
        The long-format table as a pandas DataFrame.
    """
    import pandas as pd

    cfg = cfg or RefusalDirectionConfig()
    out = Path(out_dir)
    series = resolve_series(run_or_model_dir, name=cfg.model_name or None)
    ckpts = series.checkpoints
    base_ckpt = resolve_one(cfg.base, first=True) if cfg.base else ckpts[0]
    order = [base_ckpt] + [
        c for c in ckpts if Path(c.path).resolve() != Path(base_ckpt.path).resolve()
    ]
    shard_part = parse_shard(shard)
    if shard_part:
        # Every shard analyses the base too: the drift of its checkpoints is measured from it.
        out = shard_dir(out, shard_part)
        order = [order[0]] + [order[1:][i] for i in shard_block(len(order) - 1, shard_part)]
    reference = load_direction(cfg.reference)[0] if cfg.reference else None
    sets = load_prompt_sets(cfg)
    settings = {
        k: v for k, v in cfg.to_dict().items() if k not in ("device", "plots", "model_name")
    }
    env = environment()
    # Weights are checked (headers only) before the output folder appears.
    for ckpt in order:
        check_model_dir(ckpt.path)
    (out / DIRECTIONS_DIR).mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_FILE)
    base_info = None
    parts = []
    for i, ckpt in enumerate(order):
        stem = "base" if (i == 0 and cfg.base and ckpt not in ckpts) else _file_stem(ckpt)
        dpath = out / DIRECTIONS_DIR / f"{stem}.safetensors"
        ppath = out / PARTS_DIR / f"{stem}.parquet"
        fp = fingerprint({"settings": settings, "checkpoint": ckpt.path, "base": base_ckpt.path})
        if (
            dpath.is_file()
            and ppath.is_file()
            and load_direction(dpath)[1].get("fingerprint") == fp
        ):
            # Resume: this checkpoint is done with the same settings.
            vec, meta, diffs = load_direction(dpath)
            part = read_parquet(ppath)
            if i == 0:
                base_info = (diffs, int(meta["position"]), int(meta["layer"]))
        else:
            model = load_causal_lm(ckpt.path, cfg.device, cfg.dtype)
            tok = load_tokenizer(ckpt.path)
            res = analyze_checkpoint(model, tok, sets, cfg, base_info, reference)
            if i == 0:
                base_info = (res.directions.mean_diffs, res.selection.position, res.selection.layer)
            part = pd.DataFrame(res.rows)
            part.insert(0, "model", series.name)
            part.insert(1, "step", ckpt.step)
            part.insert(2, "checkpoint", ckpt.path)
            part.insert(3, "task", TASK)
            part = part[TABLE_COLUMNS]
            (out / PARTS_DIR).mkdir(parents=True, exist_ok=True)
            write_parquet(
                part.astype({"layer": "Int64", "position": "Int64", "step": "Int64"}), ppath
            )
            save_direction(
                dpath,
                res,
                {
                    "model": series.name,
                    "checkpoint": ckpt.path,
                    "step": ckpt.step,
                    "base": base_ckpt.path,
                    "mode": MODE,
                    "template": prompt_format(tok, cfg.template, cfg.positions).template,
                    "refusal_token_ids": refusal_token_ids(tok, model, cfg.refusal_tokens),
                    "fingerprint": fp,
                    "versions": env["packages"],
                },
            )
            del model
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table = table.astype({"layer": "Int64", "position": "Int64", "step": "Int64"})
    write_parquet(table, out / TABLE_FILE)
    write_json(
        out / MANIFEST_FILE,
        {
            "source": str(run_or_model_dir),
            "checkpoints": [c.path for c in order],
            "base": base_ckpt.path,
            "prompts": sets.sizes(),
            "prompt_source": {"harmful": cfg.harmful or "toy", "harmless": cfg.harmless or "toy"},
            "prompt_fingerprint": fingerprint(dataclasses.asdict(sets)),
            "mode": MODE,
            "environment": env,
        },
    )
    if cfg.plots and not shard_part:
        from sftlens.probes._refusal_plots import plot_refusal

        plot_refusal(table, out / "plots")
    return table


__all__ = [
    "CheckpointResult",
    "PromptSets",
    "analyze_checkpoint",
    "generate",
    "load_direction",
    "load_prompt_sets",
    "make_judge",
    "refusal_rate",
    "refusal_report",
    "save_direction",
    "separation_auroc",
]
