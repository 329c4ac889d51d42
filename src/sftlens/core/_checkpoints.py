"""Checkpoint directories: discovery, their trainer state, and loading model and tokenizer.

A checkpoint is an HF ``save_pretrained`` directory with the tokenizer and
``trainer_state.json`` (`step`, `epoch`, `tokens_seen`, `lr`, `loss`). A run's grid lives in
``<run>/checkpoints/step-NNNNNN/``; a directory is complete when it has its final name (writers
use `atomic_dir`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from sftlens.core._errors import DataError
from sftlens.core._io import read_json

TRAINER_STATE = "trainer_state.json"
CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_dirname(step: int) -> str:
    """``step-000120`` for step 120 (zero-padded so names sort by step)."""
    return f"step-{step:06d}"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a run (or any model dir / hub id).

    ``path`` is what loaders open (a local dir once resolved); ``source`` is the reference the
    user named when it differs (a hub id with revision, a PEFT adapter dir); ``step_source``
    says where the step came from (see `sftlens.core.resolve_series`); ``name`` is its label in
    listings (``checkpoint-50``, ``final``, ``step1000``).
    """

    path: str
    step: int | None = None
    epoch: float | None = None
    tokens_seen: int | None = None
    lr: float | None = None
    loss: float | None = None
    name: str | None = None
    step_source: str | None = None
    source: str | None = None
    final: bool = False

    def provenance(self) -> dict[str, Any]:
        """The ``checkpoint`` field of the Trace contract (plus where the step came from)."""
        out: dict[str, Any] = {
            "path": self.path,
            "step": self.step,
            "epoch": self.epoch,
            "tokens_seen": self.tokens_seen,
        }
        if self.step_source not in (None, "trainer_state"):
            out["step_source"] = self.step_source
        if self.source and self.source != self.path:
            out["source"] = self.source
        return out


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """A `Checkpoint` for a model dir; reads ``trainer_state.json`` when present."""
    p = Path(path)
    state_file = p / TRAINER_STATE
    if not state_file.is_file():
        return Checkpoint(path=str(path))
    st = read_json(state_file)
    return Checkpoint(
        path=str(p),
        step=st.get("step"),
        epoch=st.get("epoch"),
        tokens_seen=st.get("tokens_seen"),
        lr=st.get("lr"),
        loss=st.get("loss"),
    )


def find_checkpoints(path: str | os.PathLike) -> list[Checkpoint]:
    """Checkpoints under a run dir (``<path>/checkpoints/step-*`` or ``<path>/step-*``), by step.

    A path that is itself a model dir (has ``config.json``) is returned alone. Temporary
    siblings (incomplete writes) are ignored.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such run or model directory; check the path.")
    if (p / "config.json").is_file():
        return [read_checkpoint(p)]
    root = p / CHECKPOINTS_DIR if (p / CHECKPOINTS_DIR).is_dir() else p
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and (d / "config.json").is_file():
            found.append(read_checkpoint(d))
    if not found:
        raise DataError(
            f"{p}: no checkpoints found (expected {CHECKPOINTS_DIR}/step-NNNNNN/ with config.json)."
        )
    return sorted(found, key=lambda c: c.step if c.step is not None else -1)


def load_tokenizer(path: str | os.PathLike) -> Any:
    """Load a checkpoint's tokenizer.

    A dir with ``tokenizer.json`` (ours, and most HF models) is loaded with
    `PreTrainedTokenizerFast` (AutoTokenizer can silently pick another class from
    ``config.json``'s model type); one with only a sentencepiece ``tokenizer.model`` or
    tiktoken-style files goes through `AutoTokenizer` with remote code off. A directory without
    tokenizer files is a `DataError`; a hub id falls back to `AutoTokenizer`.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    p = Path(path)
    if p.is_dir():
        if (p / "tokenizer.json").is_file():
            tok = PreTrainedTokenizerFast.from_pretrained(str(p))
        elif (p / "tokenizer.model").is_file() or any(p.glob("*.tiktoken")):
            tok = AutoTokenizer.from_pretrained(str(p), trust_remote_code=False)
        else:
            raise DataError(
                f"{p}: no tokenizer.json (nor a sentencepiece tokenizer.model or *.tiktoken) "
                "in the model directory; save the tokenizer with the model "
                "(tokenizer.save_pretrained(dir))."
            )
    else:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(
    path: str | os.PathLike,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> Any:
    """Load an HF causal LM (eval mode) from a dir or hub id.

    Args:
        path: checkpoint dir or hub id.
        device: torch device string.
        dtype: ``auto`` (bf16 on CUDA with bf16 support, else fp32), ``float32``, ``bfloat16``,
            ``float16``.
        trust_remote_code: off by default; only for models you trust.
    """
    import torch
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if p.exists() and not (p / "config.json").is_file():
        raise DataError(f"{p}: not a model directory (no config.json).")
    if dtype == "auto":
        use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        torch_dtype = torch.bfloat16 if use_bf16 else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=torch_dtype, trust_remote_code=trust_remote_code
    )
    return model.to(device).eval()
