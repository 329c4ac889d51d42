"""Deterministic shards of a job (``--shard K/N``): which items shard K of N does, and where
its outputs go so `sftlens merge` can join them into what a single run writes."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sftlens.core._errors import ConfigError

__all__ = ["parse_shard", "shard_block", "shard_dir", "shard_file"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)`` (shards count from 1); None or ``""`` -> None (no sharding)."""
    if not text:
        return None
    m = _SHARD.match(str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"--shard {text!r}: use K/N with 1 <= K <= N, e.g. --shard 2/4.")
    return int(m.group(1)), int(m.group(2))


def shard_block(n: int, shard: tuple[int, int] | None) -> range:
    """The contiguous block of ``range(n)`` that `shard` does (blocks differ in size by <= 1)."""
    if shard is None:
        return range(n)
    k, total = shard
    return range((k - 1) * n // total, k * n // total)


def shard_dir(out: str | os.PathLike, shard: tuple[int, int]) -> Path:
    """Where a sharded folder-writing verb puts its outputs: ``<out>/shard-K-of-N/``."""
    return Path(out) / f"shard-{shard[0]}-of-{shard[1]}"


def shard_file(out: str | os.PathLike, shard: tuple[int, int]) -> Path:
    """Where a sharded file-writing verb puts its output: ``<stem>.shard-K-of-N<suffix>``."""
    p = Path(out)
    return p.with_name(f"{p.stem}.shard-{shard[0]}-of-{shard[1]}{p.suffix}")
