"""Models: the toy zoo (Llama configs, random init) and any HF causal LM by id or path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftlens.core import ConfigError, DataError, check_model_dir, load_tokenizer, resolve_one

__all__ = ["TOY_MODELS", "build_toy_model", "load_model_and_tokenizer", "count_parameters"]

# Named toy configs (LlamaConfig keyword arguments). The vocabulary comes from the tokenizer.
# Weak and strong share the architecture family and differ in width and depth, as the bases
# the study compares do. The "-small" pair is a bigger scale for better numbers.
TOY_MODELS: dict[str, dict[str, Any]] = {
    "toy-tiny": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "description": "~0.05M params; for tests",
    },
    "toy-weak": {
        "hidden_size": 64,
        "intermediate_size": 192,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "description": "~0.2M params: 2 narrow layers (the weak base)",
    },
    # Sized for the CPU quickstart: 4 layers of width 128 learn 3-number Countdown about as fast
    # per step as width 192 (~1.8M params) and run 1.3x faster (benchmarks/results/experiments.md).
    "toy-strong": {
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "description": "~0.8M params: 4 wider layers (the strong base)",
    },
    "toy-weak-small": {
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "description": "~0.5M params: the weak base at the small scale",
    },
    "toy-strong-small": {
        "hidden_size": 320,
        "intermediate_size": 864,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "description": "~7M params: the strong base at the small scale",
    },
}
TOY_MAX_POSITIONS = 2048


def count_parameters(model: Any) -> int:
    """Number of trainable parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_toy_model(name: str, tokenizer: Any, seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised toy causal LM from the zoo, sized to `tokenizer`'s vocabulary.

    The one builder of small test and benchmark models: ``toy-tiny`` for tests, any zoo entry
    with `overrides` for a benchmark that sweeps a size.

    Args:
        name: a key of `TOY_MODELS` (``toy-tiny``, ``toy-weak``, ``toy-strong``, ...).
        tokenizer: the world's tokenizer (its length, bos/eos/pad ids go into the config).
        seed: init seed (same seed, same weights).
        overrides: `LlamaConfig` fields replacing the zoo entry's, e.g.
            ``hidden_size=256, num_hidden_layers=4``.

    Returns:
        A `LlamaForCausalLM` (fp32, train mode) with tied input/output embeddings.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if name not in TOY_MODELS:
        raise ConfigError(f"model: {name!r} is not a toy model; known: {', '.join(TOY_MODELS)}.")
    kwargs = {
        "vocab_size": len(tokenizer),
        "max_position_embeddings": TOY_MAX_POSITIONS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
        **{k: v for k, v in TOY_MODELS[name].items() if k != "description"},
        **overrides,
    }
    cfg = LlamaConfig(**kwargs)
    # Init under a fixed seed without disturbing the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    return model


def load_model_and_tokenizer(
    model: str,
    tokenizer: str | Any | None = None,
    seed: int = 0,
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Build a toy model or load an HF causal LM, with its tokenizer.

    Args:
        model: a `TOY_MODELS` name, or any checkpoint reference `sftlens checkpoints` reads
            (a local model dir, ``org/model``, ``org/model@rev``, a PEFT adapter, ...).
        tokenizer: a loaded tokenizer, a tokenizer dir/id, or None (the model dir's own; a toy
            model then has no tokenizer and this raises).
        seed: init seed for toy models.
        dtype: weights dtype for HF models (``float32``, ``bfloat16``; ``auto`` = float32 here,
            the trainer turns on bf16 mixed precision where supported).
        attn_implementation: ``sdpa`` (default) or ``eager``.
        trust_remote_code: off unless you trust the model's code.

    Returns:
        ``(model, tokenizer)``; the tokenizer always has a pad token.

    Raises:
        DataError: a model dir without config.json or tokenizer, or a hub id not available.
        ConfigError: a toy model without a tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if model not in TOY_MODELS:
        # Any checkpoint reference (a trainer's checkpoint-N, a verl step, a PEFT adapter,
        # org/model@rev) becomes the local dir it names.
        model = resolve_one(model).path
        check_model_dir(model)  # weights checked (headers only) before anything is loaded
    if tokenizer is None or isinstance(tokenizer, (str, Path)):
        source = tokenizer if tokenizer is not None else model
        if model in TOY_MODELS and tokenizer is None:
            raise ConfigError(
                f"model: the toy model {model!r} needs a tokenizer; set tokenizer to a dir with "
                "tokenizer.json (e.g. a pretraining checkpoint)."
            )
        tok = _load_tokenizer(str(source))
    else:
        tok = tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if model in TOY_MODELS:
        return build_toy_model(model, tok, seed=seed), tok
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    try:
        lm = AutoModelForCausalLM.from_pretrained(
            str(model),
            dtype=torch_dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
        )
    except OSError as e:
        raise DataError(
            f"model: cannot load {model!r} ({str(e).splitlines()[0][:160]}); give a toy name "
            "(sftlens train --list-models), a local model dir, or a reachable HF id."
        ) from None
    return lm, tok


def _load_tokenizer(source: str) -> Any:
    p = Path(source)
    if not p.exists() and (source.startswith((".", "/")) or source.count("/") > 1):
        raise DataError(f"{p}: tokenizer/model path not found; check the path.")
    try:
        return load_tokenizer(source)
    except OSError as e:
        raise DataError(
            f"tokenizer: cannot load {source!r} ({str(e).splitlines()[0][:160]})."
        ) from None
