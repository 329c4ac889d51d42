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
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sftlens.core import (
    Checkpoint,
    Config,
    ConfigError,
    DataError,
    check_model_dir,
    checkpoint_dirname,
    option,
    parse_shard,
    read_json,
    read_jsonl,
    read_parquet,
    read_traces,
    resolve_one,
    resolve_series,
    shard_block,
    shard_dir,
    write_json,
    write_parquet,
    write_text,
)
from sftlens.probes._cache import ActivationCache, cache_activations
from sftlens.probes._datasets import dead_end_items
from sftlens.probes._fit import fit_probes, select_rows
from sftlens.probes._lens import hook_names, load_lens
from sftlens.probes._matched import MATCH_EXACT, MATCH_NEAR, matched_probe

DEAD_END_TABLE = "dead_end.parquet"
MATCHED_TABLE = "dead_end_matched.parquet"
MATCHED_SCORES = "matched_scores.parquet"
CHECKPOINT_MATCHED = "matched.parquet"
COMPARISON_TABLE = "strong_vs_weak.parquet"
# Rows that repeat a state already seen at the same place (renders share their first moves).
DUPLICATE_KEY = ("group", "position_kind", "state", "step_idx", "resp_pos", "dead_end")
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
    expansions: list[int] = option(
        factory=lambda: [0, 1, 2],
        help="render each problem once per max_expansions value (0: the first move is live, "
        "1+: dead), so dead and live states occur at the same place; empty = one default render",
    )
    matched: bool = option(True, "also probe a surface-matched balanced set (matched.parquet)")
    match_where: str = option(
        "verdict_next == 0", "states the matched design may use (none whose next text is a verdict)"
    )
    match_exact: list[str] = option(
        factory=lambda: list(MATCH_EXACT), help="surface columns a matched pair shares exactly"
    )
    match_near: list[str] = option(
        factory=lambda: list(MATCH_NEAR), help="surface columns a matched pair shares closely"
    )
    caliper: float = option(0.25, "largest difference per match_near column, in SDs")
    match_within_problem: bool = option(False, "pair states of the same problem only")
    n_boot: int = option(1000, "bootstrap resamples over problems for the intervals")

    def validate(self) -> None:
        if self.batch_size < 1 or self.shard_traces < 1:
            raise ConfigError("batch_size and shard_traces must be at least 1.")
        if self.n_splits < 2:
            raise ConfigError(f"n_splits={self.n_splits}: cross-validation needs at least 2.")
        if self.n_problems < 2:
            raise ConfigError(
                f"n_problems={self.n_problems}: probes need at least 2 problems (e.g. 200)."
            )
        bad = [k for k in self.kinds if k not in ("step_end", "pre_next")]
        if bad:
            raise ConfigError(f"kinds: {bad[0]!r} unknown; use step_end and/or pre_next.")
        if self.caliper <= 0:
            raise ConfigError(f"caliper={self.caliper}: it must be positive (SDs).")
        if self.n_boot < 10:
            raise ConfigError(f"n_boot={self.n_boot}: use at least 10 (1000 for reporting).")
        if any(k < 0 for k in self.expansions):
            raise ConfigError(f"expansions={self.expansions}: each must be 0 or more.")


def countdown_examples(
    n: int,
    seed: int,
    split: str = "eval",
    style: str = "cot",
    knobs: Mapping[str, Any] | None = None,
    expansions: Sequence[int] = (),
) -> list[dict]:
    """`n` Countdown problems rendered in `style` (``response`` + ground-truth ``events``).

    `knobs` are the generator's (``max_number``, ``ops``, ...): probe the problems the model
    was trained on. With `expansions`, each problem is rendered once per value as the trace's
    ``max_expansions`` (dead branches explored before the solution; ids ``<id>-x<k>``, same
    ``problem_id``): with 0 the first move is live, with 1 or more it is a dead end, so dead and
    live states occur at the same place in the trace and can be matched there.
    """
    from sftlens.tasks import get_task

    task = get_task("countdown")
    out = []
    for i, p in enumerate(task.generate(n, seed, split=split, **dict(knobs or {}))):
        if not expansions:
            out.append({**task.render(p, style, seed + i), "problem_id": p["id"]})
        for k in expansions:
            ex = task.render(p, style, seed + i + 7919 * k, max_expansions=k)
            out.append({**ex, "id": f"{ex['id']}-x{k}", "problem_id": p["id"]})
    return out


def model_checkpoints(
    models: Mapping[str, str | os.PathLike], steps: Sequence[int] = ()
) -> list[tuple[str, Checkpoint]]:
    """``(model name, checkpoint)`` pairs for every model dir (run or single checkpoint)."""
    pairs = []
    for name, path in models.items():
        cks = resolve_series(path).checkpoints
        if steps:
            cks = [c for c in cks if c.step in set(steps)]
            if not cks:
                raise DataError(f"{path}: none of steps {list(steps)} found among its checkpoints.")
        for c in cks:
            check_model_dir(c.path)
        pairs.extend((name, c) for c in cks)
    return pairs


def _ckpt_dir(out: Path, model: str, ck: Checkpoint) -> Path:
    if ck.final or ck.step is None:  # a run's final model may share its last step
        return out / model / ("final" if ck.final else "model")
    return out / model / checkpoint_dirname(ck.step)


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
    if cache.stats.n_truncated:
        print(
            f"{ck.path}: truncated {cache.stats.n_truncated} traces to the model's "
            f"{_ctx(lens)}-token context ({cache.stats.n_positions_dropped} positions "
            "past it dropped)",
            file=sys.stderr,
        )
    del lens
    gc.collect()
    return cache, info.to_dict()


def _ctx(lens: Any) -> int:
    """The context length TransformerLens reports for a loaded model."""
    return int(getattr(lens.cfg, "n_ctx", 0) or 0)


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


def dead_end_matched(cache: Any, cfg: ProbeConfig) -> tuple[Any, Any]:
    """The matched design at one checkpoint, per position kind: `matched_probe` on the states
    `cfg.match_where` allows (each distinct state once). Returns ``(table, scores)`` with a
    ``position_kind`` column."""
    import pandas as pd

    index = cache.index.copy()
    index["repeat"] = index.duplicated([c for c in DUPLICATE_KEY if c in index]).astype(int)
    tables, scores = [], []
    for kind in cfg.kinds:
        where = f"position_kind == '{kind}' and repeat == 0"
        if cfg.match_where:
            where += f" and ({cfg.match_where})"
        sel = index[select_rows(index, where)]
        if sel["dead_end"].nunique() < 2 or sel["group"].nunique() < 2:
            continue  # one class or one problem only: nothing to match or cross-validate
        t, sc = matched_probe(
            cache, index, "dead_end", where=where, exact=cfg.match_exact, near=cfg.match_near,
            caliper=cfg.caliper, within_group=cfg.match_within_problem, n_splits=cfg.n_splits,
            n_boot=cfg.n_boot, seed=cfg.seed,
        )  # fmt: skip
        tables.append(t.assign(position_kind=kind))
        scores.append(sc.assign(position_kind=kind))
    if not tables:
        return pd.DataFrame(columns=["design", "position_kind"]), pd.DataFrame(
            columns=["design", "position_kind", "group", "y", "hook", "probe", "score"]
        )
    return pd.concat(tables, ignore_index=True), pd.concat(scores, ignore_index=True)


def dead_end_probe(
    models: Mapping[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    cfg: ProbeConfig | None = None,
    examples: list[dict] | None = None,
    shard: str | None = None,
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
            ``probe.parquet``, ``matched.parquet`` and ``matched_scores.parquet`` (with
            ``cfg.matched``), ``directions.safetensors`` and ``lens.json``; a checkpoint whose
            tables exist is skipped.
        cfg: settings (defaults: all layers, ``resid_post``, 200 eval problems, each rendered
            with 0, 1 and 2 dead branches, the matched design on).
        examples: rendered examples to use instead of generating Countdown problems.
        shard: ``K/N``: only block K of the (model, checkpoint) pairs, into
            ``<out_dir>/shard-K-of-N/`` (join with `merge_shard_tables`).

    With ``cfg.matched``, the matched design's tables go beside (``dead_end_matched.parquet``
    / ``.csv``: `matched_probe` rows plus ``model, step, position_kind``; ``matched_scores.
    parquet``), and with exactly two models, the first named the strong one,
    ``strong_vs_weak.parquet`` / ``.csv`` (`compare_steps` at ``step_end``, the first kind).

    Returns:
        The long table (also ``dead_end.parquet`` / ``.csv``): `fit_probes` columns plus
        ``model, step, position_kind, subset, transformer_lens, loading_mode``.
    """
    import pandas as pd

    cfg = cfg or ProbeConfig()
    cfg.validate()
    pairs = model_checkpoints(models, cfg.steps)
    part = parse_shard(shard)
    out = shard_dir(out_dir, part) if part else Path(out_dir)
    pairs = [pairs[i] for i in shard_block(len(pairs), part)]
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_FILE)
    if examples is None:
        examples = countdown_examples(
            cfg.n_problems, cfg.seed, cfg.split, knobs=cfg.knobs, expansions=cfg.expansions
        )
    tables, matched = [], []
    done = [CHECKPOINT_TABLE] + ([CHECKPOINT_MATCHED, MATCHED_SCORES] if cfg.matched else [])
    for model, ck in pairs:
        d = _ckpt_dir(out, model, ck)
        if all((d / f).is_file() for f in done):
            tables.append(pd.read_parquet(d / CHECKPOINT_TABLE))
            if cfg.matched:
                matched.append((pd.read_parquet(d / CHECKPOINT_MATCHED), d / MATCHED_SCORES))
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
        if cfg.matched:
            mt, ms = dead_end_matched(cache, cfg)
            tag = {"model": model, "step": ck.step}
            write_parquet(ms.assign(**tag), d / MATCHED_SCORES)
            write_parquet(mt.assign(**tag), d / CHECKPOINT_MATCHED)
            matched.append((mt.assign(**tag), d / MATCHED_SCORES))
        write_parquet(t, d / CHECKPOINT_TABLE)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    write_parquet(table, out / DEAD_END_TABLE)
    write_text(out / DEAD_END_TABLE.replace(".parquet", ".csv"), table.to_csv(index=False))
    if matched:
        _write_matched(out, matched, list(models), cfg)
    return table


def _write_matched(out: Path, parts: list[tuple[Any, Path]], models: list[str], cfg: Any) -> None:
    """The matched tables of all checkpoints, and strong vs weak when there are two models."""
    import pandas as pd

    from sftlens.probes._verdict import compare_steps

    mt = pd.concat([t for t, _ in parts], ignore_index=True)
    write_parquet(mt, out / MATCHED_TABLE)
    write_text(out / MATCHED_TABLE.replace(".parquet", ".csv"), mt.to_csv(index=False))
    if len(models) != 2:
        return
    kind = cfg.kinds[0]
    scores = {}
    for name in models:
        paths = [p for t, p in parts if (t["model"] == name).any()]
        sc = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        scores[name] = sc[sc["position_kind"] == kind]
    cmp = compare_steps(
        scores[models[0]], scores[models[1]], names=(models[0], models[1]), n_boot=cfg.n_boot,
        seed=cfg.seed,
    )  # fmt: skip
    write_parquet(cmp.assign(position_kind=kind), out / COMPARISON_TABLE)
    write_text(out / COMPARISON_TABLE.replace(".parquet", ".csv"), cmp.to_csv(index=False))


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


def _load_records(x: Any, required: Sequence[str], types: Any = None) -> list[dict]:
    if isinstance(x, (str, os.PathLike)):
        return list(read_jsonl(x, required=required, types=types))
    return list(x)


def appropriateness_table(traces: Any, tags: Any, out: str | os.PathLike | None = None) -> Any:
    """Behaviour counts next to whether the behaviours are used appropriately, per checkpoint.

    Args:
        traces: a traces file in any imported format, or records (``id``, ``problem_id``, ``task``,
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
    from sftlens.trace_tagger import read_tags

    # Any format `sftlens import` reads (a sftlens traces file passes through unchanged).
    trs = read_traces(traces).records if isinstance(traces, (str, os.PathLike)) else list(traces)
    tags = read_tags(tags) if isinstance(tags, (str, os.PathLike)) else tags
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
    shard: str | None = None,
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
        shard: ``K/N``: only block K of the (model, checkpoint) pairs, into
            ``<out_dir>/shard-K-of-N/`` (each shard caches the bases it needs).

    Returns:
        Long table ``model, step, base, hook, layer, metric ("cka"), value``.
    """
    import pandas as pd
    import torch

    cfg = cfg or ProbeConfig()
    cfg.validate()
    part = parse_shard(shard)
    out = shard_dir(out_dir, part) if part else Path(out_dir)
    if examples is None:
        examples = countdown_examples(cfg.n_problems, cfg.seed, cfg.split, knobs=cfg.knobs)
    step_cfg = dataclasses.replace(cfg, kinds=["step_end"])
    series = {m: resolve_series(p).checkpoints for m, p in models.items()}
    # Every model (and the base) is checked before any work or output.
    pairs = model_checkpoints(models, cfg.steps)
    base_first = resolve_one(base, first=True) if base else None
    if base_first is not None:
        check_model_dir(base_first.path)
    mine = {(m, c.path) for m, c in (pairs[i] for i in shard_block(len(pairs), part))}
    rows = []
    for model, cks in series.items():
        wanted = [c for c in cks if (model, c.path) in mine]
        if not wanted:
            continue
        base_ck = base_first if base_first is not None else cks[0]
        base_cache, _ = cache_checkpoint(
            base_ck, examples, _ckpt_dir(out / "drift_base", model, base_ck), step_cfg
        )
        bidx = base_cache.index
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
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(table, out / DRIFT_TABLE)
    write_text(out / DRIFT_TABLE.replace(".parquet", ".csv"), table.to_csv(index=False))
    return table


def read_lens_info(ckpt_out: str | os.PathLike) -> dict:
    """The `LensInfo` recorded beside a checkpoint's probe results."""
    return read_json(Path(ckpt_out) / LENS_FILE)


def merge_shard_tables(out_dir: str | os.PathLike, table: str) -> Any:
    """Join ``<out_dir>/shard-K-of-N/<table>`` (K = 1..N) into ``<out_dir>/<table>`` (+ CSV),
    the rows in shard order: the table a single run writes."""
    import pandas as pd

    out = Path(out_dir)
    shards = sorted(out.glob("shard-*-of-*"), key=lambda d: int(d.name.split("-")[1]))
    total = int(shards[0].name.split("-")[-1]) if shards else 0
    want = [out / f"shard-{k}-of-{total}" / table for k in range(1, total + 1)]
    missing = [p for p in want if not p.is_file()]
    if not shards or missing:
        raise DataError(
            f"{missing[0] if missing else out}: shard output missing; run every --shard K/N first."
        )
    merged = pd.concat([read_parquet(p) for p in want], ignore_index=True)
    write_parquet(merged, out / table)
    write_text(out / table.replace(".parquet", ".csv"), merged.to_csv(index=False))
    return merged
