"""Loading a checkpoint into TransformerLens (4.x `TransformerBridge`) with our own tokenizer.

TransformerLens 4.x wraps the HF model itself (no weight conversion), so its logits equal the HF
model's and the classic hook names (``blocks.{i}.hook_resid_post``) are available without
``enable_compatibility_mode()`` (which would fold layer norms and change the coordinates). The
TransformerLens version and the loading mode are returned in `LensInfo` and written beside every
result.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
from pathlib import Path
from typing import Any

from sftlens.core import DataError, check_model_dir, load_tokenizer, read_checkpoint, read_json

RESID_POST = "blocks.{layer}.hook_resid_post"
RESID_PRE = "blocks.{layer}.hook_resid_pre"
RESID_MID = "blocks.{layer}.hook_resid_mid"
ATTN_OUT = "blocks.{layer}.hook_attn_out"
MLP_OUT = "blocks.{layer}.hook_mlp_out"
HOOK_TEMPLATES = {
    "resid_post": RESID_POST,
    "resid_pre": RESID_PRE,
    "resid_mid": RESID_MID,
    "attn_out": ATTN_OUT,
    "mlp_out": MLP_OUT,
}


@dataclasses.dataclass(frozen=True)
class LensInfo:
    """How a model was loaded: recorded with every probe result."""

    path: str
    step: int | None
    transformer_lens: str
    loading_mode: str
    compatibility_mode: bool
    device: str
    dtype: str
    n_layers: int
    d_model: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def transformer_lens_version() -> str:
    """The installed TransformerLens version (the package has no ``__version__``)."""
    try:
        return importlib.metadata.version("transformer-lens")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def hook_names(kind: str, layers: list[int] | range) -> list[str]:
    """Spelled-out hook names: ``hook_names("resid_post", [0, 1])`` ->
    ``["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]``."""
    if kind not in HOOK_TEMPLATES:
        raise DataError(f"hook kind {kind!r} unknown; use one of {', '.join(HOOK_TEMPLATES)}.")
    return [HOOK_TEMPLATES[kind].format(layer=i) for i in layers]


def hook_layer(name: str) -> int:
    """The block index in a hook name (``blocks.3.hook_resid_post`` -> 3)."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise DataError(f"hook {name!r}: expected blocks.<layer>.<hook>.")
    return int(parts[1])


def architecture(p: Path) -> str:
    """``LlamaForCausalLM (llama)`` from a model dir's config, for error messages."""
    try:
        conf = read_json(p / "config.json")
        return f"{(conf.get('architectures') or ['?'])[0]} ({conf.get('model_type', '?')})"
    except Exception:
        return "(unknown: no readable config.json)"


def load_lens(
    path: str | os.PathLike,
    device: str = "cpu",
    dtype: str = "float32",
    hf_model: Any = None,
) -> tuple[Any, Any, LensInfo]:
    """Load a checkpoint (toy or HF) into TransformerLens.

    Args:
        path: checkpoint dir (with ``tokenizer.json``) or HF id.
        device: torch device string.
        dtype: ``float32`` (default; probes want exact activations), ``bfloat16``, ``float16``.
        hf_model: an already loaded HF model to wrap instead of loading one from `path`
            (loading mode ``hf_model``).

    Returns:
        ``(bridge, tokenizer, info)``: the `TransformerBridge` in eval mode on `device`, the
        tokenizer loaded with `sftlens.core.load_tokenizer` (always passed to the bridge), and
        a `LensInfo` (TransformerLens version, loading mode, shape).
    """
    import torch
    from transformer_lens.model_bridge import TransformerBridge

    p = Path(path)
    if hf_model is None:
        check_model_dir(p)
    tok = load_tokenizer(path)
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise DataError(f"dtype {dtype!r} unknown; use float32, bfloat16 or float16.")
    mode = "hf_model" if hf_model is not None else "boot_transformers"
    kw = {"hf_model": hf_model} if hf_model is not None else {"dtype": torch_dtype}
    try:
        bridge = TransformerBridge.boot_transformers(str(path), tokenizer=tok, device=device, **kw)
    except (ValueError, KeyError, NotImplementedError, AttributeError) as e:
        # TransformerLens maps architectures one by one; an unmapped one fails deep inside.
        arch = architecture(p)
        raise DataError(
            f"{path}: TransformerLens {transformer_lens_version()} cannot load architecture "
            f"{arch} ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}); "
            "probe a supported architecture or upgrade transformer-lens."
        ) from None
    # print_details=False: TransformerLens otherwise prints "Moving model to device" per load.
    bridge = bridge.to(device=device, dtype=torch_dtype, print_details=False).eval()
    ckpt = read_checkpoint(path) if p.is_dir() else None
    info = LensInfo(
        path=str(path),
        step=ckpt.step if ckpt else None,
        transformer_lens=transformer_lens_version(),
        loading_mode=mode,
        compatibility_mode=False,
        device=device,
        dtype=dtype,
        n_layers=int(bridge.cfg.n_layers),
        d_model=int(bridge.cfg.d_model),
    )
    return bridge, tok, info
