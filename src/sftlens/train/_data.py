"""Training data: read records, tokenize with the response mask, pack, order and collate.

Every unit of training data is a token sequence with labels (``IGNORE`` where no loss is
taken) and, when packed, per-token positions that restart at 0 for each example. The data
order of every epoch is a pure function of (seed, epoch), so the position in the data after a
resume is just the optimizer step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sftlens.core import ConfigError, DataError, check_input, read_jsonl, read_parquet

__all__ = ["IGNORE", "Unit", "collate", "epoch_batches", "load_units", "pack", "tokenize_sft"]

IGNORE = -100  # label of a token that carries no loss (prompt, padding, segment starts)


@dataclasses.dataclass
class Unit:
    """One row of a batch: a single example, or several packed ones.

    ``positions`` is None for a single example (positions 0..n-1 and an attention mask); for a
    packed row it restarts at 0 at each example, which makes the model's mask block-diagonal.
    """

    ids: list[int]
    labels: list[int]
    positions: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def read_texts(path: str | Path, field: str = "text") -> list[str]:
    """Documents for pretraining: the `field` of each JSONL/parquet record (names file:line)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        df = read_parquet(p)
        if field not in df.columns:
            raise DataError(f"{p}: no column {field!r} (has: {', '.join(map(str, df.columns))}).")
        texts = list(df[field])
        for i, t in enumerate(texts, start=1):
            if not isinstance(t, str):
                raise DataError(f"{p}:row {i}: {field!r} must be text, got {type(t).__name__}.")
    else:
        texts = []
        for i, rec in enumerate(read_jsonl(p, required=(field,)), start=1):
            if not isinstance(rec[field], str):
                raise DataError(f"{p}: record {i}: {field!r} must be text.")
            texts.append(rec[field])
    if not texts:
        raise DataError(f"{p}: no records; expected one JSON object with {field!r} per line.")
    return texts


def tokenize_sft(
    tokenizer: Any, prompt: str, response: str, prompt_formatted: bool = False
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one SFT example: labels are ``IGNORE`` on the prompt.

    The prompt (wrapped by `format_prompt` unless already formatted) and the response are
    tokenized separately and concatenated, so the mask boundary is exact whatever the
    tokenizer's merges; eos is appended to the response so the model learns to stop.
    """
    return _tokenize_sft_batch(tokenizer, [(prompt, response, prompt_formatted)])[0]


def _tokenize_sft_batch(
    tokenizer: Any, items: list[tuple[str, str, bool]]
) -> list[tuple[list[int], list[int]]]:
    from sftlens.tasks import format_prompt

    prefixes = [p if formatted else format_prompt(tokenizer, p) for p, _, formatted in items]
    has_template = getattr(tokenizer, "chat_template", None) is not None
    # A chat template already writes any bos it needs; a plain base prompt gets the default.
    p_ids = tokenizer(prefixes, add_special_tokens=not has_template)["input_ids"]
    r_ids = _with_eos(tokenizer, tokenizer([r for _, r, _ in items], add_special_tokens=False))
    return [(p + r, [IGNORE] * len(p) + r) for p, r in zip(p_ids, r_ids, strict=True)]


def _with_eos(tokenizer: Any, enc: Any) -> list[list[int]]:
    eos = tokenizer.eos_token_id
    return [
        ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids
        for ids in enc["input_ids"]
    ]


def load_units(cfg: Any, tokenizer: Any, records: list | None = None) -> tuple[list[Unit], dict]:
    """Tokenize the run's data into training units (packed rows when ``cfg.packing``).

    Args:
        cfg: the `TrainConfig` (objective, data, subset_size, max_length, too_long, packing).
        tokenizer: the run's tokenizer.
        records: already-read records (SFT dicts or texts); read from ``cfg.data`` if None.

    Returns:
        ``(units, stats)`` with stats ``examples``, ``truncated``, ``dropped``, ``tokens``,
        ``loss_tokens``, ``units``.
    """
    import numpy as np

    if records is None:
        records = read_records(cfg, tokenizer)
    n = len(records)
    if cfg.subset_size is not None:
        if cfg.subset_size > n:
            raise ConfigError(
                f"subset_size: {cfg.subset_size} is more than the {n} examples in {cfg.data}."
            )
        # A seeded shuffle independent of the epoch: subsets of one seed are nested.
        keep = np.random.default_rng([cfg.seed, 7]).permutation(n)[: cfg.subset_size]
        records = [records[i] for i in sorted(keep)]
    if cfg.objective == "sft":
        items = [(r["prompt"], r["response"], r.get("prompt_formatted", False)) for r in records]
        tokenized = _tokenize_sft_batch(tokenizer, items)
    else:
        tokenized = [
            (ids, list(ids))
            for ids in _with_eos(tokenizer, tokenizer(records, add_special_tokens=False))
        ]
    seqs: list[tuple[list[int], list[int]]] = []
    truncated = dropped = 0
    for i, (ids, labels) in enumerate(tokenized):
        if len(ids) > cfg.max_length:
            if cfg.too_long == "error":
                raise DataError(
                    f"{cfg.data}: example {i + 1} has {len(ids)} tokens > max_length="
                    f"{cfg.max_length}; raise max_length or set too_long=truncate|drop."
                )
            if cfg.too_long == "drop":
                dropped += 1
                continue
            ids, labels = ids[: cfg.max_length], labels[: cfg.max_length]
            truncated += 1
        # The first token of a sequence is never a target (nothing precedes it in its own
        # example; in a packed row the previous example must not predict it).
        labels[0] = IGNORE
        if all(label == IGNORE for label in labels):
            dropped += 1  # a prompt that fills max_length leaves no response to learn
            continue
        seqs.append((ids, labels))
    if not seqs:
        raise DataError(
            f"{cfg.data}: no usable examples (every one is empty or its prompt fills "
            f"max_length={cfg.max_length}); raise max_length."
        )
    units = pack(seqs, cfg.max_length) if cfg.packing else [Unit(i, lab) for i, lab in seqs]
    stats = {
        "examples": len(records),
        "truncated": truncated,
        "dropped": dropped,
        "tokens": sum(len(s[0]) for s in seqs),
        "loss_tokens": sum(sum(1 for x in s[1] if x != IGNORE) for s in seqs),
        "units": len(units),
    }
    return units, stats


def read_records(cfg: Any, tokenizer: Any) -> list:
    """SFT records (via `sftlens.tasks.load_sft_records`) or pretraining texts of ``cfg.data``."""
    check_input(cfg.data, "data file (`data` in the config)")
    if cfg.objective == "sft":
        from sftlens.tasks import load_sft_records

        return load_sft_records(cfg.data, tokenizer)
    return read_texts(cfg.data, cfg.text_field)


def pack(seqs: list[tuple[list[int], list[int]]], max_length: int) -> list[Unit]:
    """Pack sequences into rows of at most `max_length` tokens (best fit, longest first).

    Each row's positions restart at 0 for every example, so the model's attention is
    block-diagonal: no example attends to another one in its row. The packing is
    deterministic (it depends only on the sequences).
    """
    import bisect

    order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i][0]), i))
    rows: list[list[int]] = []  # indices of the sequences in each row
    free: list[tuple[int, int]] = []  # (space left, row index), sorted
    for i in order:
        n = len(seqs[i][0])
        j = bisect.bisect_left(free, (n, -1))
        if j < len(free):
            space, r = free.pop(j)
            rows[r].append(i)
        else:
            r, space = len(rows), max_length
            rows.append([i])
        if space - n > 0:
            bisect.insort(free, (space - n, r))
    units = []
    for row in rows:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in sorted(row):
            ids += seqs[i][0]
            labels += seqs[i][1]
            positions += range(len(seqs[i][0]))
        units.append(Unit(ids, labels, positions))
    return units


def epoch_batches(
    lengths: list[int],
    epoch: int,
    seed: int,
    global_batch: int,
    micro_batch: int,
    shuffle: str = "per_epoch",
    group_by_length: bool = True,
) -> list[list[list[int]]]:
    """The unit indices of every optimizer step of one epoch, split into micro-batches.

    Depends only on (lengths, epoch, seed, batch sizes): not on the number of processes, so
    1 process x 4 accumulation steps and 2 processes x 2 see the same global batches; process
    ``r`` takes micro-batches ``r*accum .. (r+1)*accum - 1`` of each step. The last incomplete
    global batch is dropped.

    Returns:
        ``steps[s][m]`` = the unit indices of micro-batch ``m`` of step ``s``
        (``global_batch // micro_batch`` micro-batches per step).
    """
    import numpy as np

    rng = np.random.default_rng([seed, epoch if shuffle == "per_epoch" else 0])
    perm = rng.permutation(len(lengths))
    n_steps = len(lengths) // global_batch
    perm = perm[: n_steps * global_batch]
    steps: list[list[int]] = []
    if group_by_length:
        # Sort within mega-chunks of 16 steps, then shuffle the steps of each chunk: batches
        # hold similar lengths (little padding) while the order stays random.
        chunk = 16 * global_batch
        for c in range(0, len(perm), chunk):
            part = sorted(perm[c : c + chunk].tolist(), key=lambda i: -lengths[i])
            block = [part[k : k + global_batch] for k in range(0, len(part), global_batch)]
            steps += [block[k] for k in rng.permutation(len(block))]
    else:
        steps = [perm[k : k + global_batch].tolist() for k in range(0, len(perm), global_batch)]
    return [[s[m : m + micro_batch] for m in range(0, global_batch, micro_batch)] for s in steps]


def collate(units: list[Unit], pad_id: int) -> dict[str, Any]:
    """Right-pad a micro-batch into tensors.

    Returns:
        ``input_ids`` and ``labels`` [B, T] (labels ``IGNORE`` on padding), and either
        ``attention_mask`` [B, T] (single examples) or ``position_ids`` [B, T] (packed rows:
        the padding forms its own segment and no mask is passed, so the model derives the
        block-diagonal mask from the positions; call the model with ``use_cache=False``, as a
        KV cache turns that detection off). Plus ``n_tokens`` (non-pad tokens) and
        ``n_loss`` (target tokens after the shift), as ints.
    """
    import torch

    width = max(len(u) for u in units)
    ids = torch.full((len(units), width), pad_id, dtype=torch.long)
    labels = torch.full((len(units), width), IGNORE, dtype=torch.long)
    packed = any(u.positions is not None for u in units)
    pos = torch.zeros((len(units), width), dtype=torch.long)
    mask = torch.zeros((len(units), width), dtype=torch.long)
    for b, u in enumerate(units):
        n = len(u)
        ids[b, :n] = torch.tensor(u.ids)
        labels[b, :n] = torch.tensor(u.labels)
        mask[b, :n] = 1
        pos[b, :n] = torch.tensor(u.positions if u.positions is not None else range(n))
        pos[b, n:] = torch.arange(width - n)
    out: dict[str, Any] = {"input_ids": ids, "labels": labels}
    if packed:
        out["position_ids"] = pos
    else:
        out["attention_mask"] = mask
    out["n_tokens"] = int(mask.sum())
    out["n_loss"] = int((labels[:, 1:] != IGNORE).sum())
    return out
