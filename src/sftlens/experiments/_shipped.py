"""Result tables shipped with the package, measured at a scale a quick run cannot afford.

The quickstart's bases start at zero accuracy, so its curves cannot dip. The small scale's do;
its accuracy table ships as ``configs/results/<spec>.<scale>.evals.csv`` beside
``<spec>.<scale>.json`` (the command, seed, commit, machine and wall time that produced it),
written by `ship_result`. A report whose own run shows no dip quotes the shipped curves,
labelled as shipped, instead of leaving the claim unanswered.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pandas as pd

from sftlens.core import DataError, read_json, read_parquet, write_json, write_text

EVALS_SUFFIX = ".evals.csv"
META_SUFFIX = ".json"


def results_root() -> Path:
    return Path(str(resources.files("sftlens").joinpath("configs", "results")))


@dataclasses.dataclass(frozen=True)
class ShippedResult:
    """A shipped run's accuracy table and where it came from."""

    name: str
    scale: str
    evals: pd.DataFrame
    meta: dict

    @property
    def command(self) -> str:
        return self.meta.get("command") or f"sftlens run {self.name} --scale {self.scale}"


def shipped_results(name: str, root: Path | None = None) -> list[ShippedResult]:
    """Every shipped result of spec `name`, by scale name."""
    root = root or results_root()
    out = []
    for f in sorted(root.glob(f"{name}.*{EVALS_SUFFIX}")):
        scale = f.name[len(name) + 1 : -len(EVALS_SUFFIX)]
        meta_f = root / f"{name}.{scale}{META_SUFFIX}"
        meta = read_json(meta_f) if meta_f.is_file() else {}
        out.append(ShippedResult(name, scale, pd.read_csv(f), meta))
    return out


def ship_result(run_dir: str | Path, out_root: Path | None = None, **meta: object) -> Path:
    """Write a finished run's accuracy table and its provenance into the shipped results.

    Args:
        run_dir: a run folder with ``tables/evals.parquet`` and ``manifest.json``.
        out_root: where to write (default: the package's ``configs/results``).
        **meta: extra provenance (``commit``, ``machine``, ``wall_seconds``, ...).

    Returns:
        The CSV written.
    """
    run_dir = Path(run_dir)
    man_f = run_dir / "manifest.json"
    if not man_f.is_file():
        raise DataError(f"{run_dir}: no manifest.json; is it a finished `sftlens run` folder?")
    man = read_json(man_f)
    ev = read_parquet(run_dir / "tables" / "evals.parquet", columns=("model", "eval", "metric"))
    ev = ev[ev["metric"] == "accuracy"]
    name, scale = man.get("name"), man.get("scale")
    root = out_root or results_root()
    root.mkdir(parents=True, exist_ok=True)
    out = root / f"{name}.{scale}{EVALS_SUFFIX}"
    write_text(out, ev.to_csv(index=False, float_format="%.6g"))
    secs = sum(float(s.get("seconds") or 0) for s in (man.get("stages") or {}).values())
    write_json(
        root / f"{name}.{scale}{META_SUFFIX}",
        {
            "command": f"sftlens run {name} --scale {scale}",
            "seed": man.get("seed"),
            "stage_seconds": round(secs),
            "eval_labels": man.get("eval_labels", {}),
            **meta,
        },
    )
    return out
