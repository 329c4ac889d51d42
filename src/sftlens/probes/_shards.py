"""Joining the shards of probe verbs run with ``--shard K/N`` into a single run's outputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftlens.core import DataError, read_json, read_parquet, write_json, write_parquet
from sftlens.probes._analyses import merge_shard_tables
from sftlens.probes._refusal import RefusalDirectionConfig
from sftlens.probes._refusal_eval import (
    CONFIG_FILE,
    DIRECTIONS_DIR,
    MANIFEST_FILE,
    PARTS_DIR,
    TABLE_FILE,
)

__all__ = ["merge_refusal_shards", "merge_shard_tables"]


def merge_refusal_shards(out_dir: str | os.PathLike) -> Any:
    """Join ``<out_dir>/shard-K-of-N/`` refusal analyses into what a single run writes.

    The base's rows come once (from shard 1), then every shard's checkpoints in order;
    directions and parts are copied beside them and the plots drawn from the merged table.
    """
    import shutil

    import pandas as pd

    out = Path(out_dir)
    shards = sorted(out.glob("shard-*-of-*"), key=lambda d: int(d.name.split("-")[1]))
    total = int(shards[0].name.split("-")[-1]) if shards else 0
    want = [out / f"shard-{k}-of-{total}" for k in range(1, total + 1)]
    missing = [d for d in want if not (d / TABLE_FILE).is_file()]
    if not shards or missing:
        raise DataError(
            f"{missing[0] if missing else out}: refusal shard missing or unfinished; run every "
            "--shard K/N first."
        )
    manifests = [read_json(d / MANIFEST_FILE) for d in want]
    base = manifests[0]["base"]
    tables = [read_parquet(d / TABLE_FILE) for d in want]
    tables = tables[:1] + [t[t["checkpoint"] != base] for t in tables[1:]]
    table = pd.concat(tables, ignore_index=True)
    table = table.astype({"layer": "Int64", "position": "Int64", "step": "Int64"})
    for d in want:
        for sub in (DIRECTIONS_DIR, PARTS_DIR):
            (out / sub).mkdir(parents=True, exist_ok=True)
            for f in sorted((d / sub).glob("*")):
                shutil.copyfile(f, out / sub / f.name)
    write_parquet(table, out / TABLE_FILE)
    cks = [c for m in manifests for c in m["checkpoints"]]
    write_json(out / MANIFEST_FILE, {**manifests[0], "checkpoints": list(dict.fromkeys(cks))})
    shutil.copyfile(want[0] / CONFIG_FILE, out / CONFIG_FILE)
    cfg = RefusalDirectionConfig.load(out / CONFIG_FILE)
    if cfg.plots:
        from sftlens.probes._refusal_plots import plot_refusal

        plot_refusal(table, out / "plots")
    return table
