"""Checkpoint directories: discovery, their trainer state, and loading model and tokenizer.

A checkpoint is an HF ``save_pretrained`` directory with the tokenizer and
``trainer_state.json`` (`step`, `epoch`, `tokens_seen`, `lr`, `loss`). A run's grid lives in
``<run>/checkpoints/step-NNNNNN/``; a directory is complete when it has its final name (writers
use `atomic_dir`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from sftlens.core._errors import DataError
from sftlens.core._io import read_json

TRAINER_STATE = "trainer_state.json"
PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
MAX_SAFETENSORS_HEADER = 100 << 20
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


def check_safetensors(path: str | os.PathLike) -> None:
    """Check that a ``.safetensors`` file is whole: its header parses and every tensor's bytes
    lie inside the file (a truncated or corrupt file is a `DataError` naming it).

    Reads only the header, so it costs the same for a 10 GB shard as for a small one.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder; give the .safetensors file inside it.")
    if not p.is_file():
        raise DataError(f"{p}: file not found; check the path.")
    size = p.stat().st_size
    bad = f"{p}: not a readable safetensors file"
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise DataError(f"{bad} (only {size} bytes); re-save or re-download it.")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise DataError(f"{bad} (header of {n} bytes in a {size}-byte file); re-save it.")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DataError(f"{bad} (its header is not JSON); re-save or re-download it.") from None
    if not isinstance(header, dict):
        raise DataError(f"{bad} (its header is not a JSON object); re-save it.")
    data = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise DataError(f"{bad} (tensor {name!r} has no valid offsets); re-save it.")
        if offsets[1] > data:
            raise DataError(
                f"{bad} (truncated: tensor {name!r} ends at byte {offsets[1]} of {data}); "
                "re-save or re-download it."
            )


def check_model_dir(path: str | os.PathLike) -> None:
    """Check a local model folder before loading it: ``config.json`` is a JSON object, its
    weights are safetensors and whole. A pickle-only checkpoint (``pytorch_model.bin``) is
    refused: unpickling runs code from the file. A hub id (not a local path) is not checked.

    Raises:
        DataError: one line naming the folder or file and the fix.
    """
    p = Path(path)
    if not p.exists():
        return
    if not p.is_dir():
        raise DataError(f"{p}: is a file, not a model folder; give the folder holding config.json.")
    if not (p / "config.json").is_file():
        raise DataError(f"{p}: not a model directory (no config.json).")
    if not isinstance(read_json(p / "config.json"), dict):
        raise DataError(f"{p / 'config.json'}: expected a JSON object; re-save the model.")
    weights = sorted(p.glob("*.safetensors"))
    if not weights:
        pickles = sorted(q.name for pat in PICKLE_WEIGHTS for q in p.glob(pat))
        if pickles:
            raise DataError(
                f"{p}: only pickle weights ({pickles[0]}), which can run code when loaded; "
                "convert them to safetensors (model.save_pretrained(dir)) in a trusted environment."
            )
        raise DataError(f"{p}: no model weights (*.safetensors); save the model into it.")
    for w in weights:
        check_safetensors(w)


def _unreachable(path: str | os.PathLike, e: OSError) -> str:
    first = (str(e).splitlines() or [type(e).__name__])[0][:160]
    return (
        f"{path}: cannot load the model ({first}); give a local model folder or an HF id that "
        "is reachable (or cached) from this machine."
    )


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
            try:
                tok = PreTrainedTokenizerFast.from_pretrained(str(p))
            except Exception as e:  # tokenizers raises a bare Exception for a corrupt file
                msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
                raise DataError(
                    f"{p / 'tokenizer.json'}: not a readable tokenizer ({msg}); re-save it."
                ) from None
        elif (p / "tokenizer.model").is_file() or any(p.glob("*.tiktoken")):
            tok = AutoTokenizer.from_pretrained(str(p), trust_remote_code=False)
        else:
            raise DataError(
                f"{p}: no tokenizer.json (nor a sentencepiece tokenizer.model or *.tiktoken) "
                "in the model directory; save the tokenizer with the model "
                "(tokenizer.save_pretrained(dir))."
            )
    else:
        try:
            tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
        except OSError as e:
            raise DataError(_unreachable(path, e)) from None
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

    Raises:
        DataError: a local folder without ``config.json``, with pickle-only, corrupt or
            truncated weights (see `check_model_dir`).
    """
    import torch
    from transformers import AutoModelForCausalLM

    check_model_dir(path)
    if dtype == "auto":
        use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        torch_dtype = torch.bfloat16 if use_bf16 else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    # Local folders load safetensors only (checked above): never a pickle.
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
            use_safetensors=True if Path(path).exists() else None,
        )
    except OSError as e:
        raise DataError(_unreachable(path, e)) from None
    return model.to(device).eval()
