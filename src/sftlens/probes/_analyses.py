"""The procedure-vs-surface analyses: dead-end probe, behavioural appropriateness, CKA drift.

Each is a function that writes its table (long-format parquet + CSV) and returns it:

* `dead_end_probe`: per model, checkpoint and layer, is the current Countdown state a dead end
  (ground truth from the solver) decodable at the end of the step, before the model writes any
  exploration or backtrack? Against shuffled labels and a surface baseline.
* `appropriateness_table`: backtrack precision and verification correctness of sampled traces
  next to the raw behaviour counts and lengths (imitation shows as counts and length rising
  without precision).
* `cka_drift`: linear CKA per layer between each checkpoint and its base, same inputs.

The causal steering check lives in `sftlens.probes._steer`.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sftlens.core import (
    Checkpoint,
    Config,
    ConfigError,
    DataError,
    checkpoint_dirname,
    find_checkpoints,
    option,
    read_json,
    read_jsonl,
    write_json,
    write_parquet,
    write_text,
)
from sftlens.probes._cache import ActivationCache, cache_activations
from sftlens.probes._datasets import dead_end_items
from sftlens.probes._fit import fit_probes, select_rows
from sftlens.probes._lens import hook_names, load_lens

DEAD_END_TABLE = "dead_end.parquet"
APPROPRIATENESS_TABLE = "appropriateness.parquet"
DRIFT_TABLE = "drift.parquet"
CHECKPOINT_TABLE = "probe.parquet"
DIRECTIONS_FILE = "directions.safetensors"
LENS_FILE = "lens.json"
CONFIG_FILE = "config.yaml"
CACHE_DIR = "cache"
# Row subsets of the dead-end probe: every step, or only steps whose state still has two or
# more numbers (a "Try a op b. Left: ..." move; single-number candidates are checked in text).
SUBSETS = {"all_steps": "", "multi_number": " and state_size >= 2"}
DIRECTION_SUBSET = "multi_number"
BACKTRACK_LABEL = "backtracking"
VERIFY_LABEL = "verification"


@dataclasses.dataclass
class ProbeConfig(Config):
    """Settings shared by the probe analyses (saved as ``config.yaml`` beside their tables)."""

    hook: str = option("resid_post", "hook kind cached per layer (resid_post, resid_mid, ...)")
    layers: list[int] = option(factory=list, help="layers to probe; empty = all")
    steps: list[int] = option(factory=list, help="checkpoint steps to use; empty = all")
    device: str = option("cpu", "torch device")
    dtype: str = option("float32", "model dtype for activations")
    batch_size: int = option(16, "sequences per forward pass")
    shard_traces: int = option(256, "sequences per cache shard (bounds memory)")
    n_problems: int = option(200, "Countdown eval problems to teacher-force")
    split: str = option("eval", "problem split (train or eval)")
    seed: int = option(0, "problems, renders, folds and shuffles")
    knobs: dict[str, Any] = option(
        factory=dict, help="Countdown generation knobs (e.g. max_number), as in the SFT data"
    )
    n_splits: int = option(5, "GroupKFold folds (grouped by problem)")
    kinds: list[str] = option(
        factory=lambda: ["step_end", "pre_next"], help="token positions per step event"
    )

    def validate(self) -> None:
        if self.batch_size < 1 or self.shard_traces < 1:
            raise ConfigError("batch_size and shard_traces must be at least 1.")
        if self.n_splits < 2:
            raise ConfigError(f"n_splits={self.n_splits}: cross-validation needs at least 2.")
        bad = [k for k in self.kinds if k not in ("step_end", "pre_next")]
        if bad:
            raise ConfigError(f"kinds: {bad[0]!r} unknown; use step_end and/or pre_next.")


def countdown_examples(
    n: int,
    seed: int,
    split: str = "eval",
    style: str = "cot",
    knobs: Mapping[str, Any] | None = None,
) -> list[dict]:
    """`n` Countdown problems rendered in `style` (``response`` + ground-truth ``events``).

    `knobs` are the generator's (``max_number``, ``ops``, ...): probe the problems the model
    was trained on.
    """
    from sftlens.tasks import get_task

    task = get_task("countdown")
    out = []
    for i, p in enumerate(task.generate(n, seed, split=split, **dict(knobs or {}))):
        ex = task.render(p, style, seed + i)
        out.append({**ex, "problem_id": p["id"]})
    return out


def model_checkpoints(
    models: Mapping[str, str | os.PathLike], steps: Sequence[int] = ()
) -> list[tuple[str, Checkpoint]]:
    """``(model name, checkpoint)`` pairs for every model dir (run or single checkpoint)."""
    pairs = []
    for name, path in models.items():
        cks = find_checkpoints(path)
        if steps:
            cks = [c for c in cks if c.step in set(steps)]
            if not cks:
                raise DataError(f"{path}: none of steps {list(steps)} found among its checkpoints.")
        pairs.extend((name, c) for c in cks)
    return pairs


def _ckpt_dir(out: Path, model: str, ck: Checkpoint) -> Path:
    return out / model / (checkpoint_dirname(ck.step) if ck.step is not None else "model")


def cache_checkpoint(
    ck: Checkpoint, examples: list[dict], out: Path, cfg: ProbeConfig
) -> tuple[ActivationCache, dict]:
    """Cache the dead-end positions of `examples` at one checkpoint (resumes a partial cache).

    Returns the cache and the `LensInfo` dict of the load.
    """
    lens, tok, info = load_lens(ck.path, device=cfg.device, dtype=cfg.dtype)
    layers = cfg.layers or list(range(info.n_layers))
    hooks = hook_names(cfg.hook, layers)
    cache = cache_activations(
        lens,
        dead_end_items(tok, examples, kinds=cfg.kinds),
        hooks,
        out / CACHE_DIR,
        batch_size=cfg.batch_size,
        shard_traces=cfg.shard_traces,
        meta=info.to_dict(),
    )
    del lens
    gc.collect()
    return cache, info.to_dict()


def _save_directions(cache: ActivationCache, index: Any, path: Path) -> None:
    """Difference-in-means dead-end directions per hook: ``{hook}`` unit ``[d_model]`` and
    ``{hook}.norm`` (the class-mean separation, the unit of steering strength)."""
    import torch
    from safetensors.torch import save_file

    from sftlens.core import atomic_path

    mask = (index["position_kind"] == "step_end") & (index["state_size"] >= 2)
    if index.loc[mask, "dead_end"].nunique() < 2:
        mask = index["position_kind"] == "step_end"
    y = index.loc[mask, "dead_end"].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        return
    tensors = {}
    for h in cache.hooks:
        x = cache.load(h, dtype=torch.float32).numpy()[mask.to_numpy()]
        raw = x[y == 1].mean(0) - x[y == 0].mean(0)
        norm = float(np.linalg.norm(raw))
        tensors[h] = torch.tensor(raw / (norm + 1e-12), dtype=torch.float32)
        tensors[f"{h}.norm"] = torch.tensor([norm], dtype=torch.float32)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def dead_end_probe(
    models: Mapping[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    cfg: ProbeConfig | None = None,
    examples: list[dict] | None = None,
) -> Any:
    """Probe every checkpoint of every model for "the current state is a dead end".

    Teacher-forces ground-truth ``cot`` traces, caches ``cfg.hook`` at every layer at each step
    event's positions (``step_end``, ``pre_next``), and fits probes with grouped CV, shuffled
    labels and the surface baseline, for all steps and for multi-number states only. A dead-end
    step is followed by exploration and then a backtrack, so a probe that reads the label at
    the step's end reads it before any backtrack text is written.

    Args:
        models: ``{name: run-or-model dir}``, e.g. ``{"strong": ..., "weak": ...}``.
        out_dir: output folder; ``<model>/step-NNNNNN/`` holds each checkpoint's cache,
            ``probe.parquet``, ``directions.safetensors`` and ``lens.json``; a checkpoint whose
            ``probe.parquet`` exists is skipped.
        cfg: settings (defaults: all layers, ``resid_post``, 200 eval problems).
        examples: rendered examples to use instead of generating Countdown problems.

    Returns:
        The long table (also ``dead_end.parquet`` / ``.csv``): `fit_probes` columns plus
        ``model, step, position_kind, subset, transformer_lens, loading_mode``.
    """
    import pandas as pd

    cfg = cfg or ProbeConfig()
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_FILE)
    if examples is None:
        examples = countdown_examples(cfg.n_problems, cfg.seed, cfg.split, knobs=cfg.knobs)
    tables = []
    for model, ck in model_checkpoints(models, cfg.steps):
        d = _ckpt_dir(out, model, ck)
        if (d / CHECKPOINT_TABLE).is_file():
            tables.append(pd.read_parquet(d / CHECKPOINT_TABLE))
            continue
        cache, info = cache_checkpoint(ck, examples, d, cfg)
        write_json(d / LENS_FILE, info)
        index = cache.index
        parts = []
        for kind in cfg.kinds:
            for subset, cond in SUBSETS.items():
                where = f"position_kind == '{kind}'{cond}"
                sel = index[select_rows(index, where)]
                if sel["dead_end"].nunique() < 2 or sel["group"].nunique() < 2:
                    continue  # one class or one problem only: nothing to cross-validate
                t = fit_probes(
                    cache, index, "dead_end", where=where, n_splits=cfg.n_splits, seed=cfg.seed
                )
                parts.append(t.assign(position_kind=kind, subset=subset))
        if not parts:
            raise DataError(
                f"{ck.path}: no step events with both dead and live states; check the examples."
            )
        t = pd.concat(parts, ignore_index=True).assign(
            model=model,
            step=ck.step,
            checkpoint=ck.path,
            transformer_lens=info["transformer_lens"],
            loading_mode=info["loading_mode"],
        )
        _save_directions(cache, index, d / DIRECTIONS_FILE)
        write_parquet(t, d / CHECKPOINT_TABLE)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    write_parquet(table, out / DEAD_END_TABLE)
    write_text(out / DEAD_END_TABLE.replace(".parquet", ".csv"), table.to_csv(index=False))
    return table


def best_layer(table: Any, model: str | None = None, step: int | None = None) -> tuple[str, int]:
    """The hook with the highest logistic-probe selectivity (AUROC) at ``step_end``.

    Returns ``(hook, layer)``; restricted to one model / step when given.
    """
    t = table[(table["probe"] == "logreg") & (table["metric"] == "selectivity_auroc")]
    t = t[t["position_kind"] == "step_end"] if "position_kind" in t else t
    if "subset" in t and (t["subset"] == DIRECTION_SUBSET).any():
        t = t[t["subset"] == DIRECTION_SUBSET]
    if model is not None:
        t = t[t["model"] == model]
    if step is not None:
        t = t[t["step"] == step]
    if t.empty:
        raise DataError("no logreg selectivity rows for that model/step in the dead-end table.")
    r = t.loc[t["value"].idxmax()]
    return str(r["hook"]), int(r["layer"])


# --------------------------------------------------------------------------- appropriateness


def _load_records(x: Any, required: Sequence[str]) -> list[dict]:
    if isinstance(x, (str, os.PathLike)):
        return list(read_jsonl(x, required=required, allow_partial_tail=True))
    return list(x)


def appropriateness_table(traces: Any, tags: Any, out: str | os.PathLike | None = None) -> Any:
    """Behaviour counts next to whether the behaviours are used appropriately, per checkpoint.

    Args:
        traces: traces JSONL path or records (Trace contract: ``id``, ``problem_id``, ``task``,
            ``model``, ``checkpoint.step``, ``prompt``, ``completion``, ``n_tokens``,
            ``score.correct``; ``meta`` of the problem when the task needs it).
        tags: tags JSONL path or records (``id``, ``spans``, ``counts``) for the same ids.
        out: write the table here (parquet; a CSV beside it) when given.

    Returns:
        Long table ``model, step, task, metric, value, n``. Metrics: ``accuracy``,
        ``n_tokens``, ``n_chars``, ``count_<label>`` per trace, and for Countdown the
        task-aware checks (``backtrack_precision``, ``verification_correct_rate``, ...),
        averaged over traces where defined.
    """
    import pandas as pd

    from sftlens.rollout import problem_of_trace

    trs = _load_records(traces, ("id", "completion"))
    tgs = {t["id"]: t for t in _load_records(tags, ("id", "spans"))}
    missing = [t["id"] for t in trs if t["id"] not in tgs]
    if missing:
        raise DataError(
            f"{len(missing)} traces have no tags (first: {missing[0]!r}); tag the same traces "
            "file with `sftlens tag`."
        )
    checks_fn = None
    rows = []
    for tr in trs:
        tag = tgs[tr["id"]]
        ck = tr.get("checkpoint") or {}
        task = str(tr.get("task", ""))
        rec: dict[str, Any] = {
            "model": tr.get("model"),
            "step": ck.get("step"),
            "task": task,
            "accuracy": _num((tr.get("score") or {}).get("correct")),
            "n_tokens": _num(tr.get("n_tokens")),
            "n_chars": float(len(tr["completion"])),
        }
        for label, c in (tag.get("counts") or {}).items():
            rec[f"count_{label}"] = float(c)
        if task.startswith("countdown"):
            if checks_fn is None:
                from sftlens.tasks import countdown_behaviour_checks as checks_fn
            checks = checks_fn(tr["completion"], problem_of_trace(tr), tag["spans"])
            rec.update({k: _num(v) for k, v in checks.items() if _num(v) is not None})
        rows.append(rec)
    wide = pd.DataFrame(rows)
    keys = ["model", "step", "task"]
    long = wide.melt(id_vars=keys, var_name="metric", value_name="value").dropna(subset=["value"])
    table = (
        long.groupby(keys + ["metric"], dropna=False)["value"]
        .agg(value="mean", n="count")
        .reset_index()
    )
    if out is not None:
        write_parquet(table, out)
        write_text(Path(out).with_suffix(".csv"), table.to_csv(index=False))
    return table


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, str):
        return None
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v) if np.isfinite(v) else None
    return None


# --------------------------------------------------------------------------------- drift


def linear_cka(x: Any, y: Any) -> float:
    """Linear CKA between two activation matrices ``[n, d1]`` and ``[n, d2]`` (same rows).

    1.0 means the representations differ only by a rotation and isotropic scale.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise DataError(f"CKA needs the same rows: {x.shape[0]} vs {y.shape[0]}.")
    x = x - x.mean(0)
    y = y - y.mean(0)
    # ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), via the n x n Gram matrices when n < d.
    hsic = np.linalg.norm(y.T @ x) ** 2
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(hsic / den) if den > 0 else float("nan")


def cka_drift(
    models: Mapping[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    cfg: ProbeConfig | None = None,
    base: str | os.PathLike | None = None,
    examples: list[dict] | None = None,
) -> Any:
    """Linear CKA per layer between each checkpoint and its base, on the same inputs.

    The inputs are the step-end positions of teacher-forced Countdown ``cot`` traces, cached
    under ``<out_dir>/drift_base`` and ``<out_dir>/drift`` (a rerun resumes them).

    Args:
        models: ``{name: run dir}``.
        out_dir: output folder (``drift.parquet`` / ``.csv``).
        cfg: settings; ``cfg.steps`` restricts the checkpoints compared.
        base: the base model dir for every model (default: each run's earliest checkpoint).
        examples: rendered examples instead of generated problems.

    Returns:
        Long table ``model, step, base, hook, layer, metric ("cka"), value``.
    """
    import pandas as pd
    import torch

    cfg = cfg or ProbeConfig()
    out = Path(out_dir)
    if examples is None:
        examples = countdown_examples(cfg.n_problems, cfg.seed, cfg.split, knobs=cfg.knobs)
    step_cfg = dataclasses.replace(cfg, kinds=["step_end"])
    rows = []
    for model, path in models.items():
        cks = find_checkpoints(path)
        base_ck = find_checkpoints(base)[0] if base else cks[0]
        base_cache, _ = cache_checkpoint(
            base_ck, examples, _ckpt_dir(out / "drift_base", model, base_ck), step_cfg
        )
        bidx = base_cache.index
        wanted = [c for c in cks if not cfg.steps or c.step in set(cfg.steps)]
        for ck in wanted:
            d = _ckpt_dir(out / "drift", model, ck)
            cache, _ = cache_checkpoint(ck, examples, d, step_cfg)
            idx = cache.index
            if (
                len(idx) != len(bidx)
                or not (
                    idx[["trace_id", "position"]].to_numpy()
                    == bidx[["trace_id", "position"]].to_numpy()
                ).all()
            ):
                raise DataError(
                    f"{ck.path}: its tokenizer gives other positions than the base's; CKA "
                    "needs the same inputs (use a base with the same tokenizer)."
                )
            for h in cache.hooks:
                x = base_cache.load(h, dtype=torch.float32).numpy()
                y = cache.load(h, dtype=torch.float32).numpy()
                rows.append(
                    {
                        "model": model,
                        "step": ck.step,
                        "base": base_ck.path,
                        "hook": h,
                        "layer": int(h.split(".")[1]),
                        "metric": "cka",
                        "value": linear_cka(x, y),
                    }
                )
    table = pd.DataFrame(rows)
    write_parquet(table, out / DRIFT_TABLE)
    write_text(out / DRIFT_TABLE.replace(".parquet", ".csv"), table.to_csv(index=False))
    return table


def read_lens_info(ckpt_out: str | os.PathLike) -> dict:
    """The `LensInfo` recorded beside a checkpoint's probe results."""
    return read_json(Path(ckpt_out) / LENS_FILE)
