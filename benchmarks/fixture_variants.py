"""Run the tests whose fixtures build or train models under variants, one factor at a time.

A test that passes only on one machine's floating-point path, or for one lucky seed, fails
under some variant: torch threads (``OMP_NUM_THREADS`` 1 and 2; the reduction order changes),
torch's deterministic algorithms on and off, and every model-building fixture's seed shifted
by 1 to 4 (``SFTLENS_TEST_SEED_SHIFT``, read by ``tests/conftest.py``). Prints one table row
per variant: passed / failed / errors, wall time, and the steps the refusing-model fixture
needed to meet its property.

Usage:

  python benchmarks/fixture_variants.py                      # every variant, default tests
  python benchmarks/fixture_variants.py --only seed+1 omp=1  # a subset
  python benchmarks/fixture_variants.py --tests tests/test_refusal_model.py
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The tests that train a model in a fixture, or build one from a seeded random init.
FIXTURE_TESTS = (
    "tests/test_refusal_model.py",
    "tests/test_rollout_engine.py",
    "tests/test_refusal_unit.py",
    "tests/test_train_run.py::test_sft_run_writes_grid_and_changes_every_parameter",
    "tests/test_train_run.py::test_resume_after_a_killed_run_gives_bitwise_equal_weights",
)
BASE = {"OMP_NUM_THREADS": "2", "SFTLENS_TEST_DETERMINISTIC": "0", "SFTLENS_TEST_SEED_SHIFT": "0"}
VARIANTS = {
    "baseline": {},
    "omp=1": {"OMP_NUM_THREADS": "1"},
    "deterministic": {"SFTLENS_TEST_DETERMINISTIC": "1"},
    **{f"seed+{k}": {"SFTLENS_TEST_SEED_SHIFT": str(k)} for k in range(1, 5)},
}
FIXTURE_LINE = re.compile(r"refusing-model fixture, seed (\d+): (.*)")


def run_variant(name: str, tests: list[str], timeout: float, select: str = "") -> dict:
    env = {**os.environ, **BASE, **VARIANTS[name]}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *tests]
    if select:
        cmd += ["-k", select]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        parts = [x.decode() if isinstance(x, bytes) else x or "" for x in (e.stdout, e.stderr)]
        out, rc = "".join(parts) + "\nTIMEOUT", -1
    seconds = time.monotonic() - t0
    counts = {k: 0 for k in ("passed", "failed", "error")}
    summary = [ln for ln in out.splitlines() if " in " in ln and ("passed" in ln or "failed" in ln)]
    for n, word in re.findall(r"(\d+) (passed|failed|error)", summary[-1] if summary else ""):
        counts[word] = int(n)
    fixture = FIXTURE_LINE.search(out)
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, flags=re.M)
    return {
        "variant": name,
        "env": " ".join(f"{k}={v}" for k, v in VARIANTS[name].items()) or "(defaults)",
        "rc": rc,
        "timed_out": rc == -1,
        **counts,
        "seconds": seconds,
        "fixture": fixture.group(2).split(";")[-1].strip() if fixture else "-",
        "failures": failures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--tests", nargs="*", default=list(FIXTURE_TESTS))
    ap.add_argument("--select", default="", help="pytest -k expression (a quicker subset)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per variant")
    ap.add_argument(
        "--jobs", type=int, default=1, help="variants run at once (wall times then overlap)"
    )
    args = ap.parse_args()
    print(f"tests: {' '.join(args.tests)}" + (f" -k {args.select!r}" if args.select else ""))
    print(f"defaults: {' '.join(f'{k}={v}' for k, v in BASE.items())}\n")
    print("| variant | env | passed | failed | errors | wall s | refusing fixture met at |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(run_variant, n, args.tests, args.timeout, args.select) for n in args.only
        ]
        for fut in as_completed(futures):
            r = fut.result()
            rows.append(r)
            print(
                f"| {r['variant']} | {r['env']} | {r['passed']} | {r['failed']} | {r['error']} | "
                f"{r['seconds']:.0f}{' (timeout)' if r['timed_out'] else ''} | {r['fixture']} |",
                flush=True,
            )
    for r in rows:
        for f in r["failures"]:
            print(f"{r['variant']}: {f}")
    sys.exit(0 if all(r["rc"] == 0 for r in rows) else 1)


if __name__ == "__main__":
    main()
