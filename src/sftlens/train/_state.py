"""Checkpoints of a training run: writing them atomically, and finding where to resume.

A checkpoint is ``<out_dir>/checkpoints/step-NNNNNN/``: the HF ``save_pretrained`` files, the
tokenizer, ``trainer_state.json``, and (in the latest checkpoint, or all of them) a
``training_state/`` folder with what a resume needs: the optimizer state (its tensors in
``optimizer.safetensors``, everything else in ``optimizer.json``; no pickles) and
``state.json`` (step, tokens seen, batch geometry). The LR schedule and the data order are pure
functions of the step, and the RNG is reseeded from (seed, step, rank) every step, so the step
restores them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sftlens.core import (
    CHECKPOINTS_DIR,
    TRAINER_STATE,
    ConfigError,
    atomic_dir,
    checkpoint_dirname,
    read_json,
    read_yaml,
    write_json,
)

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "TRAINING_STATE_DIR",
    "find_resume_point",
    "load_optimizer_state",
    "save_checkpoint",
]

CONFIG_FILE = "train_config.yaml"
METRICS_FILE = "metrics.jsonl"
TRAINING_STATE_DIR = "training_state"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
STATE_FILE = "state.json"
# Keys that may change between an interrupted run and its resume (they do not change results).
RESUME_MUTABLE = ("resume", "progress", "trackers", "log_every", "run_name", "keep_training_state")


def save_checkpoint(
    accelerator: Any,
    model: Any,
    optimizer: Any,
    tokenizer: Any,
    ckpt_root: Path,
    trainer_state: dict,
    resume_state: dict | None,
    keep_training_state: str = "last",
) -> Path:
    """Write one checkpoint dir atomically (main process); every process must call this.

    Args:
        trainer_state: the ``trainer_state.json`` content (step, epoch, tokens_seen, lr, loss).
        resume_state: ``state.json`` for resuming, or None to write model files only.
        keep_training_state: ``last`` deletes older checkpoints' ``training_state/``.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per run (ours), not one per shard written
    # Gathering a sharded (FSDP/DeepSpeed) state dict is collective: all processes take part.
    state_dict = accelerator.get_state_dict(model)
    final = ckpt_root / checkpoint_dirname(trainer_state["step"])
    if accelerator.is_main_process:
        with atomic_dir(final) as tmp:
            accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state_dict)
            tokenizer.save_pretrained(tmp)
            write_json(tmp / TRAINER_STATE, trainer_state)
            if resume_state is not None:
                (tmp / TRAINING_STATE_DIR).mkdir()
                _save_optimizer_state(optimizer.state_dict(), tmp / TRAINING_STATE_DIR)
                write_json(tmp / TRAINING_STATE_DIR / STATE_FILE, resume_state)
        if keep_training_state == "last" and resume_state is not None:
            for d in ckpt_root.glob("step-*"):
                if d != final and (d / TRAINING_STATE_DIR).is_dir():
                    shutil.rmtree(d / TRAINING_STATE_DIR)
    accelerator.wait_for_everyone()
    return final


def _save_optimizer_state(state: dict, folder: Path) -> None:
    """Split an optimizer state dict into tensors (safetensors) and the rest (JSON).

    ``state`` is ``{param key: {name: tensor or number}}`` (the key is a parameter index, or a
    parameter name for sharded optimizers); ``param_groups`` holds numbers, lists and the keys.
    Entries are stored as ``"<param key>/<name>"``.
    """
    from safetensors.torch import save_file

    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            if hasattr(value, "detach"):
                tensors[f"{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}/{name}"] = value
    save_file(tensors, str(folder / OPTIMIZER_TENSORS))
    write_json(folder / OPTIMIZER_META, {"scalars": scalars, "param_groups": state["param_groups"]})


def load_optimizer_state(ckpt: Path) -> dict:
    """The optimizer state dict saved in a checkpoint, rebuilt from safetensors and JSON."""
    from safetensors.torch import load_file

    folder = ckpt / TRAINING_STATE_DIR
    if not (folder / OPTIMIZER_TENSORS).is_file() or not (folder / OPTIMIZER_META).is_file():
        raise ConfigError(
            f"{folder}: no {OPTIMIZER_TENSORS} + {OPTIMIZER_META} to resume from (a checkpoint "
            "of an older sftlens?); start a new run in another out_dir."
        )
    meta = read_json(folder / OPTIMIZER_META)
    state: dict[int | str, dict] = {}
    items = [*load_file(str(folder / OPTIMIZER_TENSORS)).items(), *meta["scalars"].items()]
    for key, value in items:
        idx, name = key.rsplit("/", 1)
        state.setdefault(int(idx) if idx.isdigit() else idx, {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def find_resume_point(cfg: Any) -> tuple[Path, dict] | None:
    """The latest resumable checkpoint of ``cfg.out_dir`` and its ``state.json``, or None.

    A rerun of the same command resumes: an out_dir holding this config's own run (its saved
    ``train_config.yaml`` equal to ``cfg`` but for keys that do not change results) continues
    from its latest checkpoint, with or without ``resume``. ``resume=true`` also continues a
    run whose saved config is missing.

    Raises:
        ConfigError: the out_dir holds another run (a different config, or no saved config and
            ``resume`` false); or no checkpoint has the state a resume needs.
    """
    out_dir = Path(cfg.out_dir)
    root = out_dir / CHECKPOINTS_DIR
    done = sorted(d for d in root.glob("step-*") if (d / TRAINER_STATE).is_file())
    if not done:
        return None
    saved_cfg = out_dir / CONFIG_FILE
    if not saved_cfg.is_file() and not cfg.resume:
        raise ConfigError(
            f"{out_dir}: already holds a training run ({len(done)} checkpoints) without its "
            f"{CONFIG_FILE}; set resume=true to continue it, or choose another out_dir."
        )
    if saved_cfg.is_file():
        old = read_yaml(saved_cfg) or {}
        new = cfg.to_dict()
        for key in sorted(set(old) | set(new)):
            if key in RESUME_MUTABLE or key == "out_dir":
                continue
            if old.get(key) != new.get(key):
                raise ConfigError(
                    f"{saved_cfg}: out_dir holds a run with {key}={old.get(key)!r} but this "
                    f"run has {key}={new.get(key)!r}; a resume must use the same config, so "
                    "choose another out_dir for a new run."
                )
    resumable = [d for d in done if (d / TRAINING_STATE_DIR / STATE_FILE).is_file()]
    if not resumable:
        raise ConfigError(
            f"{root}: no checkpoint has a {TRAINING_STATE_DIR}/ folder to resume from; "
            "start a new run in another out_dir."
        )
    last = resumable[-1]
    return last, read_json(last / TRAINING_STATE_DIR / STATE_FILE)
