"""Ship a finished run's accuracy table with the package, with how it was made.

The quickstart's bases start at zero, so its own curves cannot dip; its report then quotes the
small scale's curves from ``src/sftlens/configs/results/`` (see `sftlens.experiments._shipped`).
This script writes them there from a run folder, recording the command, seed, commit, machine
and wall time.

Usage:
    sftlens run countdown_lab --scale small --out runs/small      # about 30-60 min on 2 cores
    .venv/bin/python benchmarks/ship_result.py runs/small --wall 2950
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a finished `sftlens run` folder")
    ap.add_argument("--wall", type=float, default=None, help="wall seconds the run took")
    args = ap.parse_args()

    from sftlens.experiments._shipped import ship_result

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "commit": commit or None,
        "measured": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
    }
    if args.wall is not None:
        meta["wall_seconds"] = round(args.wall)
    print(ship_result(args.run, **meta))


if __name__ == "__main__":
    main()
