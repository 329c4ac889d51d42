"""The training loop: one function, read top to bottom (nanoGPT style, on accelerate).

Runs in-process (one process) or under ``accelerate launch`` (DDP, FSDP, DeepSpeed). Loss is
the mean over every target token of the global batch (all micro-batches of all processes), so
the gradient does not depend on how the batch is split into processes and accumulation steps.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from sftlens.core import (
    CHECKPOINTS_DIR,
    ConfigError,
    DataError,
    append_jsonl,
    check_model_dir,
    environment,
    interrupt_point,
    read_jsonl,
    write_json,
    write_jsonl,
)
from sftlens.train._config import TrainConfig
from sftlens.train._data import IGNORE, collate, epoch_batches, load_units, read_records, read_texts
from sftlens.train._models import TOY_MODELS, _load_tokenizer, count_parameters
from sftlens.train._schedule import checkpoint_grid, lr_at
from sftlens.train._state import (
    CONFIG_FILE,
    METRICS_FILE,
    find_resume_point,
    load_optimizer_state,
    save_checkpoint,
)

__all__ = ["CRASH_ENV", "train"]

# Testing hook: exit abruptly (os._exit, no cleanup) right after this optimizer step, to prove
# that a killed run resumes to the same weights.
CRASH_ENV = "SFTLENS_TRAIN_CRASH_AFTER_STEP"
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def train(cfg: TrainConfig) -> Path:
    """Train a model on ``cfg.data`` and write its checkpoint grid; returns ``cfg.out_dir``.

    Writes ``<out_dir>/train_config.yaml``, ``<out_dir>/metrics.jsonl`` and
    ``<out_dir>/checkpoints/step-NNNNNN/`` for each grid step (step 0 is the base). Everything
    is validated before the out_dir is created: a bad config, missing or malformed data, or a
    model dir without tokenizer raise `SftlensError` and write nothing.
    """
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.utils import DistributedType
    from transformers.utils import logging as hf_logging

    cfg.validate()
    hf_logging.disable_progress_bar()  # one progress bar per run (ours)
    out_dir = Path(cfg.out_dir)
    missing = [t for t in cfg.trackers if not _installed(TRACKER_MODULES[t])]
    if missing:
        raise ConfigError(f"trackers: {missing[0]} is not installed; pip install {missing[0]}.")
    use_bf16 = cfg.dtype == "bfloat16" or (
        cfg.dtype == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    accelerator = Accelerator(
        # Without a GPU, cpu=True is what makes `accelerate launch --multi_gpu` processes
        # join one gloo group (otherwise each would train alone).
        cpu=not (torch.cuda.is_available() or _mps_available()),
        mixed_precision="bf16" if use_bf16 else "no",
        gradient_accumulation_steps=cfg.grad_accum,
        log_with=cfg.trackers or None,
        project_dir=str(out_dir / "logs"),
    )
    world, rank, main = (
        accelerator.num_processes,
        accelerator.process_index,
        accelerator.is_main_process,
    )
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)

    # ---- 1. Validate and load everything before anything is written. -------------------------
    resume = find_resume_point(cfg)
    if resume is not None and sharded:
        raise ConfigError("resume under FSDP/DeepSpeed is not supported; start a new out_dir.")
    texts = None
    if resume is None and cfg.model not in TOY_MODELS:
        check_model_dir(cfg.model)  # weights (headers only) before the tokenizer and data
    if resume is not None:
        tokenizer = _load_tokenizer(str(resume[0]))
    elif cfg.tokenizer is not None:
        tokenizer = _load_tokenizer(cfg.tokenizer)
    elif cfg.model in TOY_MODELS:
        if cfg.objective != "pretrain":
            raise ConfigError(
                f"tokenizer: the toy model {cfg.model!r} needs the world's tokenizer for sft; "
                "set tokenizer (or model) to a pretraining checkpoint dir."
            )
        from sftlens.tasks import build_tokenizer

        # A fresh toy base gets a tokenizer trained on its own pretraining text.
        texts = read_texts(cfg.data, cfg.text_field)
        tokenizer = build_tokenizer(texts, vocab_size=cfg.vocab_size)
    else:
        tokenizer = _load_tokenizer(cfg.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    units, data_stats = load_units(cfg, tokenizer, texts or read_records(cfg, tokenizer))
    global_batch = cfg.batch_size * cfg.grad_accum * world
    steps_per_epoch = len(units) // global_batch
    if steps_per_epoch == 0:
        raise DataError(
            f"{cfg.data}: {len(units)} training rows are fewer than one global batch "
            f"({cfg.batch_size} x {cfg.grad_accum} accumulation x {world} processes); use more "
            "data or a smaller batch."
        )
    total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
    grid = checkpoint_grid(
        cfg.grid.kind, total_steps, every=cfg.grid.every, steps=cfg.grid.steps, start=cfg.grid.start
    )
    start_step, tokens_seen = 0, 0
    if resume is not None:
        ckpt, state = resume
        if state["global_batch"] != global_batch:
            raise ConfigError(
                f"{ckpt}: the run used a global batch of {state['global_batch']} and this launch "
                f"gives {global_batch}; resume with the same number of processes."
            )
        start_step, tokens_seen = state["step"], state["tokens_seen"]
    model = _load_model(cfg, tokenizer, resume[0] if resume else None)
    accelerator.wait_for_everyone()  # every process has validated before the first write

    # ---- 2. The run folder: config, metrics (cut back to the resume step), step-0 base. ------
    ckpt_root = out_dir / CHECKPOINTS_DIR
    metrics_path = out_dir / METRICS_FILE
    if main:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        cfg.save(out_dir / CONFIG_FILE)
        if metrics_path.exists():
            kept = [
                r
                for r in read_jsonl(metrics_path, allow_partial_tail=True)
                if r.get("step", 0) <= start_step
            ]
            write_jsonl(metrics_path, kept)
        if resume is None:
            write_json(
                out_dir / "run_info.json",
                {
                    "data": data_stats,
                    "parameters": count_parameters(model),
                    "world_size": world,
                    # What accelerate really ran: an FSDP config on CPU runs as MULTI_CPU (DDP).
                    "distributed": str(accelerator.distributed_type.value),
                    "global_batch": global_batch,
                    "steps_per_epoch": steps_per_epoch,
                    "total_steps": total_steps,
                    "grid": grid,
                    "environment": environment(),
                },
            )
    if cfg.trackers:
        flat = {k: str(v) if isinstance(v, (list, dict)) else v for k, v in cfg.to_dict().items()}
        accelerator.init_trackers(cfg.run_name or out_dir.name, config=flat)

    if cfg.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
    model.config.use_cache = False
    model.train()
    # Weight decay on matrices only: norms and biases are not decayed (nanoGPT's grouping).
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=tuple(cfg.betas),
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    if resume is not None:
        optimizer.load_state_dict(load_optimizer_state(resume[0]))

    def checkpoint(step: int, lr: float, loss: float | None) -> None:
        trainer_state = {
            "step": step,
            "epoch": step / steps_per_epoch,
            "tokens_seen": tokens_seen,
            "lr": lr,
            "loss": loss,
            "total_steps": total_steps,
            "objective": cfg.objective,
        }
        resume_state = {
            "step": step,
            "tokens_seen": tokens_seen,
            "global_batch": global_batch,
            "world_size": world,
            "scheduler": {"kind": cfg.schedule.kind, "step": step},
            "rng": "reseeded each step from (seed, step, rank)",
        }
        save_checkpoint(
            accelerator,
            model,
            optimizer,
            tokenizer,
            ckpt_root,
            trainer_state,
            None if sharded else resume_state,
            cfg.keep_training_state,
        )

    if start_step == 0:
        checkpoint(0, 0.0, None)

    # ---- 3. The loop. ------------------------------------------------------------------------
    from tqdm.auto import tqdm

    # A bar on a terminal; in a log file (not a tty) one plain line per tenth of the run, since
    # a bar redrawn every step floods the file with carriage-return updates.
    tty = sys.stderr.isatty()
    bar = tqdm(
        total=total_steps,
        initial=start_step,
        desc=f"{cfg.objective} {out_dir.name}",
        unit="step",
        disable=not (main and cfg.progress and tty),
        dynamic_ncols=True,
    )
    log_lines = main and cfg.progress and not tty
    line_every = max(1, total_steps // 10)
    run_t0 = time.perf_counter()
    crash_after = int(os.environ.get(CRASH_ENV, "-1"))
    device = accelerator.device
    order, order_epoch = None, -1
    window_tokens, window_time = 0, 0.0
    for step in range(start_step, total_steps):
        t0 = time.perf_counter()
        # The data position is the step: the epoch's order is a pure function of (seed, epoch).
        epoch, k = divmod(step, steps_per_epoch)
        if epoch != order_epoch:
            lengths = [len(u) for u in units]
            order = epoch_batches(
                lengths,
                epoch,
                cfg.seed,
                global_batch,
                cfg.batch_size,
                cfg.shuffle,
                cfg.group_by_length,
            )
            order_epoch = epoch
        # This process's share of the global batch: grad_accum consecutive micro-batches.
        micro = order[k][rank * cfg.grad_accum : (rank + 1) * cfg.grad_accum]
        batches = [collate([units[i] for i in m], tokenizer.pad_token_id) for m in micro]
        interrupt_point("train.data")

        # Count the target tokens of the whole global batch first: each token's loss is
        # divided by this one number, whatever micro-batch or process it lands in.
        counts = torch.tensor(
            [sum(b["n_loss"] for b in batches), sum(b["n_tokens"] for b in batches)],
            device=device,
        )
        n_loss, n_tokens = (int(x) for x in accelerator.reduce(counts, reduction="sum").tolist())

        lr = lr_at(
            step,
            total_steps,
            cfg.lr,
            cfg.schedule.kind,
            cfg.schedule.warmup_frac,
            cfg.schedule.min_lr_frac,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        # Reseed from (seed, step, rank) so dropout and any sampling replay exactly on resume.
        torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + rank)

        loss_sum = torch.zeros((), device=device)
        for b in batches:
            inputs = {
                k: v.to(device)
                for k, v in b.items()
                if k in ("input_ids", "attention_mask", "position_ids")
            }
            labels = b["labels"].to(device)
            with accelerator.accumulate(model):
                logits = model(**inputs, use_cache=False).logits  # [B, T, V]
                # Token t predicts token t+1; prompt, padding and segment starts are IGNORE.
                tok_loss = F.cross_entropy(
                    logits[:, :-1].flatten(0, 1).float(),
                    labels[:, 1:].flatten(),
                    ignore_index=IGNORE,
                    reduction="sum",
                )
                # accelerate divides by grad_accum and DDP averages over processes: undo both,
                # so the summed gradient is exactly the global token-mean.
                accelerator.backward(tok_loss * (world * cfg.grad_accum / n_loss))
                loss_sum += tok_loss.detach()
        grad_norm = None
        if cfg.max_grad_norm is not None:
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        loss = accelerator.reduce(loss_sum, reduction="sum").item() / n_loss
        tokens_seen += n_tokens
        window_tokens += n_tokens
        window_time += time.perf_counter() - t0  # training time only, checkpoint writes excluded
        done = step + 1
        if main and (done % cfg.log_every == 0 or done == total_steps or done == start_step + 1):
            record = {
                "step": done,
                "epoch": round(done / steps_per_epoch, 6),
                "loss": loss,
                "lr": lr,
                "grad_norm": None if grad_norm is None else float(grad_norm),
                "tokens_seen": tokens_seen,
                "loss_tokens": n_loss,
                "tokens_per_s": window_tokens / max(window_time, 1e-9),
            }
            append_jsonl(metrics_path, [record])
            if cfg.trackers:
                accelerator.log({k: v for k, v in record.items() if v is not None}, step=done)
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{record['tokens_per_s']:.0f}")
            window_tokens, window_time = 0, 0.0
        bar.update(1)
        if log_lines and (done % line_every == 0 or done == total_steps):
            print(
                f"{cfg.objective} {out_dir.name}: step {done}/{total_steps}  loss {loss:.4f}  "
                f"{time.perf_counter() - run_t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if done in grid:
            checkpoint(done, lr, loss)
        if done == crash_after:
            os._exit(17)
        # A Ctrl-C here loses at most the steps since the last checkpoint: a rerun of the
        # same command resumes from it.
        interrupt_point("train.step")
    bar.close()
    if cfg.trackers:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return out_dir


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _load_model(cfg: TrainConfig, tokenizer: Any, resume_dir: Path | None) -> Any:
    """The model to train: the resume checkpoint, a fresh toy model, or an HF model."""
    from sftlens.train._models import build_toy_model, load_model_and_tokenizer

    if resume_dir is not None:
        model, _ = load_model_and_tokenizer(
            str(resume_dir),
            tokenizer,
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
        )
        return model
    if cfg.model in TOY_MODELS:
        model = build_toy_model(cfg.model, tokenizer, seed=cfg.seed)
        with contextlib.suppress(AttributeError, ValueError):
            model.set_attn_implementation(cfg.attn_implementation)
        return model
    model, _ = load_model_and_tokenizer(
        cfg.model,
        tokenizer,
        attn_implementation=cfg.attn_implementation,
        trust_remote_code=cfg.trust_remote_code,
    )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise DataError(
            f"tokenizer: {len(tokenizer)} tokens but the model {cfg.model!r} embeds only "
            f"{model.get_input_embeddings().num_embeddings}; use the model's own tokenizer."
        )
    return model
