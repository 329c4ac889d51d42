"""A streaming activation cache: chosen hooks at chosen token positions, written in shards.

Each batch runs through the TransformerLens bridge with one forward hook per requested hook
name; the hook keeps only the requested positions (``act[batch_idx, pos_idx]``), so nothing of
full sequences is held past the hook call. Rows are buffered for one shard (a bounded number of
traces), then written as ``shard-NNNNN.safetensors`` (one tensor ``[n_rows, d_model]`` per hook)
plus ``shard-NNNNN.parquet`` (one index row per activation row: trace id, group, position, the
labels). A shard is complete when its line is in ``shards.jsonl``; a rerun skips the traces of
finished shards, so an interrupted cache resumes. ``index.parquet`` concatenates the shard
indexes once every trace is done.

Memory is bounded by one shard's rows plus one batch's forward pass, independent of the number
of traces.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sftlens.core import (
    DataError,
    append_jsonl,
    atomic_path,
    read_json,
    read_jsonl,
    write_json,
    write_parquet,
)
from sftlens.probes._lens import architecture, hook_layer, transformer_lens_version

CACHE_CONFIG = "cache.json"
SHARDS_LOG = "shards.jsonl"
INDEX_FILE = "index.parquet"
SHARD_STEM = "shard-{:05d}"
INDEX_COLUMNS = ("trace_id", "group", "shard", "row", "position")


@dataclasses.dataclass
class CacheItem:
    """One sequence to cache: token ids, the positions to keep, one label row per position.

    Attributes:
        trace_id: unique id of the sequence (trace or SFT example).
        group: grouping key for cross-validation (the problem id).
        input_ids: token ids of the full sequence, length ``seq``.
        positions: token indices to keep (each ``0 <= p < seq``).
        rows: one dict per position with its labels and features (JSON scalars or int lists);
            every item must use the same keys.
    """

    trace_id: str
    group: str
    input_ids: list[int]
    positions: list[int]
    rows: list[dict[str, Any]]

    def __post_init__(self) -> None:
        if len(self.positions) != len(self.rows):
            raise DataError(
                f"trace {self.trace_id}: {len(self.positions)} positions but "
                f"{len(self.rows)} label rows; give one row per position."
            )
        n = len(self.input_ids)
        bad = [p for p in self.positions if not 0 <= p < n]
        if bad:
            raise DataError(
                f"trace {self.trace_id}: position {bad[0]} outside the sequence (length {n})."
            )


@dataclasses.dataclass
class CacheStats:
    """What a caching run did: rows and traces written, and its largest in-memory buffer."""

    n_traces: int = 0
    n_rows: int = 0
    n_tokens: int = 0
    n_shards_written: int = 0
    n_traces_skipped: int = 0
    peak_buffer_bytes: int = 0
    peak_buffer_rows: int = 0
    n_truncated: int = 0
    n_positions_dropped: int = 0


class ActivationCache:
    """Read access to a finished (or partly finished) cache directory.

    Attributes:
        path: the cache directory.
        config: the cache's ``cache.json`` (hooks, model, TransformerLens version, ...).
        hooks: hook names cached, spelled out (``blocks.3.hook_resid_post``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        cfg_file = self.path / CACHE_CONFIG
        if not cfg_file.is_file():
            raise DataError(f"{self.path}: not an activation cache (no {CACHE_CONFIG}).")
        self.config: dict[str, Any] = read_json(cfg_file)
        self.hooks: list[str] = list(self.config["hooks"])
        self.stats = CacheStats()

    def shards(self) -> list[dict[str, Any]]:
        """Finished shards, in order (from ``shards.jsonl``)."""
        log = self.path / SHARDS_LOG
        if not log.is_file():
            return []
        return list(read_jsonl(log, required=("shard", "n_rows"), allow_partial_tail=True))

    @property
    def index(self) -> Any:
        """The index DataFrame: one row per cached activation row, in `load` order."""
        import pandas as pd

        frames = [pd.read_parquet(self.path / f"{s['shard']}.parquet") for s in self.shards()]
        if not frames:
            return pd.DataFrame(columns=list(INDEX_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def load(self, hook: str, dtype: Any = None) -> Any:
        """All rows of one hook, ``[n_rows, d_model]``, aligned with `index`.

        Args:
            hook: a cached hook name.
            dtype: cast to this torch dtype (default: as stored).
        """
        import torch
        from safetensors import safe_open

        if hook not in self.hooks:
            raise DataError(
                f"{self.path}: hook {hook!r} not cached; cached: {', '.join(self.hooks)}."
            )
        parts = []
        for s in self.shards():
            # Read only this hook's tensor from the shard.
            with safe_open(str(self.path / f"{s['shard']}.safetensors"), framework="pt") as f:
                t = f.get_tensor(hook)
            parts.append(t if dtype is None else t.to(dtype))
        if not parts:
            return torch.zeros(0, int(self.config.get("d_model", 0)))
        return torch.cat(parts)


def _chunks(items: Iterable[CacheItem], size: int) -> Iterator[list[CacheItem]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _forward_batch(
    lens: Any,
    batch: list[CacheItem],
    hooks: list[str],
    pad_id: int,
    stop_at_layer: int | None,
) -> dict[str, Any]:
    """Run one right-padded batch and return ``{hook: [n_positions, d_model]}`` on the CPU.

    Right padding needs no attention mask for a causal model: a real token never attends to a
    later (pad) token, so its activations equal those of the unpadded sequence.
    """
    import torch

    device = next(lens.parameters()).device
    seq = max(len(it.input_ids) for it in batch)
    ids = torch.full((len(batch), seq), pad_id, dtype=torch.long)
    for b, it in enumerate(batch):
        ids[b, : len(it.input_ids)] = torch.tensor(it.input_ids, dtype=torch.long)
    b_idx = torch.tensor([b for b, it in enumerate(batch) for _ in it.positions], device=device)
    p_idx = torch.tensor([p for it in batch for p in it.positions], device=device)
    out: dict[str, Any] = {}

    def keeper(name: str) -> Any:
        # The bridge may report an aliased name on the hook object (``blocks.0.hook_out``), so
        # each hook closes over the name it was asked for.
        def keep(act: Any, hook: Any) -> None:
            # Only the requested positions leave the hook; the full [batch, seq, d] tensor is
            # freed by the forward pass as usual.
            out[name] = act[b_idx, p_idx].detach().to("cpu", copy=True)

        return keep

    with torch.inference_mode():
        lens.run_with_hooks(
            ids.to(device),
            fwd_hooks=[(h, keeper(h)) for h in hooks],
            return_type=None,
            stop_at_layer=stop_at_layer,
            use_cache=False,
        )
    missing = [h for h in hooks if h not in out]
    if missing:
        raise DataError(f"hook {missing[0]!r} never fired; check the hook name.")
    return out


def _write_shard(
    out_dir: Path, shard_no: int, tensors: dict[str, Any], index_rows: list[dict]
) -> dict[str, Any]:
    import pandas as pd
    from safetensors.torch import save_file

    stem = SHARD_STEM.format(shard_no)
    df = pd.DataFrame(index_rows)
    write_parquet(df, out_dir / f"{stem}.parquet")
    with atomic_path(out_dir / f"{stem}.safetensors") as tmp:
        save_file({h: t.contiguous() for h, t in tensors.items()}, str(tmp))
    return {
        "shard": stem,
        "n_rows": len(index_rows),
        "trace_ids": sorted({r["trace_id"] for r in index_rows}),
    }


def cache_activations(
    lens: Any,
    items: Iterable[CacheItem],
    hooks: list[str],
    out_dir: str | os.PathLike,
    batch_size: int = 16,
    shard_traces: int = 256,
    pad_id: int | None = None,
    meta: dict[str, Any] | None = None,
) -> ActivationCache:
    """Stream activations at chosen positions into a sharded, resumable cache.

    Args:
        lens: a TransformerLens bridge (see `load_lens`).
        items: `CacheItem` s (an iterator is consumed lazily, one shard at a time).
        hooks: hook names, spelled out (``blocks.0.hook_resid_post``).
        out_dir: cache directory; an existing one with the same hooks is resumed.
        batch_size: sequences per forward pass.
        shard_traces: sequences per shard (bounds the in-memory buffer).
        pad_id: padding token id (default: the bridge tokenizer's pad id, else 0).
        meta: recorded in ``cache.json`` (model path, step, TransformerLens version, ...).

    Returns:
        The `ActivationCache`; ``.stats`` says what this call wrote and its peak buffer size.
        Each hook's rows are ``[n_rows, d_model]`` in the model's dtype.
    """

    if not hooks:
        raise DataError("no hooks to cache; pass hook names such as blocks.0.hook_resid_post.")
    if batch_size < 1 or shard_traces < 1:
        raise DataError("batch_size and shard_traces must be at least 1.")
    known = set(lens.hook_dict)
    unknown = [h for h in hooks if h not in known]
    if unknown:
        near = sorted(k for k in known if k.startswith("blocks.0.hook_"))
        path = (meta or {}).get("path")
        where = f"{path}, a {architecture(Path(path))}," if path else "this model"
        raise DataError(
            f"hook {unknown[0]!r} does not exist on {where} as TransformerLens "
            f"{transformer_lens_version()} maps it; e.g. {', '.join(near[:8])}."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / CACHE_CONFIG
    config = {
        "hooks": list(hooks),
        "d_model": int(lens.cfg.d_model),
        "transformer_lens": transformer_lens_version(),
        **(meta or {}),
    }
    if cfg_file.is_file():
        old = read_json(cfg_file)
        for key in ("hooks", "path", "data"):
            if old.get(key) != config.get(key):
                raise DataError(
                    f"{cfg_file}: the existing cache has other {key} ({old.get(key)!r}; this "
                    f"run: {config.get(key)!r}); use a new --out directory or delete this one."
                )
    else:
        write_json(cfg_file, config)
    cache = ActivationCache(out)
    finished = cache.shards()
    done = {t for s in finished for t in s.get("trace_ids", [])}
    shard_no = len(finished)
    stats = cache.stats
    stats.n_traces_skipped = 0
    stop = max(hook_layer(h) for h in hooks) + 1
    # With a learned position table (GPT-2's), sequences longer than the context have no
    # position rows: they are cut to it on purpose, and counted. Rotary and ALiBi models run
    # past their nominal context, as their HF forward does.
    learned = getattr(lens.cfg, "positional_embedding_type", "standard") in (
        "standard",
        "shortformer",
    )
    n_ctx = int(getattr(lens.cfg, "n_ctx", 0) or 0) if learned else 0
    if pad_id is None:
        tok = getattr(lens, "tokenizer", None)
        pad_id = getattr(tok, "pad_token_id", None) or 0

    for shard_items in _chunks(items, shard_traces):
        todo = [it for it in shard_items if it.trace_id not in done]
        stats.n_traces_skipped += len(shard_items) - len(todo)
        todo = [_fit_context(it, n_ctx, stats) for it in todo]
        todo = [it for it in todo if it.positions]
        if not todo:
            continue
        # Sort by length so each batch pads little; rows are re-ordered in the index anyway.
        todo.sort(key=lambda it: len(it.input_ids))
        buffers: dict[str, list[Any]] = {h: [] for h in hooks}
        index_rows: list[dict[str, Any]] = []
        buffered_bytes = 0
        for batch in _chunks(todo, batch_size):
            acts = _forward_batch(lens, batch, hooks, pad_id, stop)
            for h in hooks:
                buffers[h].append(acts[h])
                buffered_bytes += acts[h].numel() * acts[h].element_size()
            for it in batch:
                for p, extra in zip(it.positions, it.rows, strict=True):
                    row = {"trace_id": it.trace_id, "group": it.group, "position": p}
                    row.update(extra)
                    index_rows.append(row)
                stats.n_tokens += len(it.input_ids)
            stats.peak_buffer_bytes = max(stats.peak_buffer_bytes, buffered_bytes)
            stats.peak_buffer_rows = max(stats.peak_buffer_rows, len(index_rows))
        import torch

        tensors = {h: torch.cat(buffers[h]) for h in hooks}
        for r, row in enumerate(index_rows):
            row["shard"] = SHARD_STEM.format(shard_no)
            row["row"] = r
        record = _write_shard(out, shard_no, tensors, index_rows)
        # The log line is what marks the shard finished: written last, so a crash before it
        # leaves the shard to be redone on resume.
        append_jsonl(out / SHARDS_LOG, [record])
        done.update(record["trace_ids"])
        shard_no += 1
        stats.n_shards_written += 1
        stats.n_traces += len(todo)
        stats.n_rows += len(index_rows)
        del buffers, tensors, index_rows

    _write_index(out, cache.shards())
    return cache


def _fit_context(it: CacheItem, n_ctx: int, stats: CacheStats) -> CacheItem:
    """`it` cut to the first `n_ctx` tokens (positions past them dropped), counted in stats."""
    if not n_ctx or len(it.input_ids) <= n_ctx:
        return it
    keep = [i for i, p in enumerate(it.positions) if p < n_ctx]
    stats.n_truncated += 1
    stats.n_positions_dropped += len(it.positions) - len(keep)
    return dataclasses.replace(
        it,
        input_ids=it.input_ids[:n_ctx],
        positions=[it.positions[i] for i in keep],
        rows=[it.rows[i] for i in keep],
    )


def _write_index(out: Path, shards: list[dict]) -> None:
    """Concatenate the shard indexes into ``index.parquet``, one shard in memory at a time."""
    import pyarrow.parquet as pq

    if not shards:
        return
    with atomic_path(out / INDEX_FILE) as tmp:
        writer = None
        try:
            for s in shards:
                table = pq.read_table(out / f"{s['shard']}.parquet")
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
