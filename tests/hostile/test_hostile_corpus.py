"""Every verb against every hostile input that applies: exit 2, one line, nothing changed.

The corpus is built by `hostile_cases` in a fresh folder per case (nothing is checked in).
The default run checks one case per cause; the full corpus is marked slow.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hostile_cases import DEFAULT_IDS, TRACES, all_cases, check_case, jsonl, run_in_process

CASES = {c.id: c for c in all_cases()}


def test_default_ids_exist_and_cover_every_cause():
    assert set(DEFAULT_IDS) <= set(CASES)
    assert {CASES[i].cause for i in DEFAULT_IDS} == {c.cause for c in CASES.values()}


@pytest.mark.parametrize("case_id", DEFAULT_IDS)
def test_hostile_case(case_id, tmp_path):
    problem = check_case(CASES[case_id], tmp_path / "w", run_in_process)
    assert not problem, problem


@pytest.mark.slow
@pytest.mark.parametrize("case_id", sorted(set(CASES) - set(DEFAULT_IDS)))
def test_hostile_case_full(case_id, tmp_path):
    problem = check_case(CASES[case_id], tmp_path / "w", run_in_process)
    assert not problem, problem


def _subprocess(argv: list[str]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "sftlens", *argv], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stderr


@pytest.mark.parametrize(
    "case_id", ["traces-malformed_last_line-score_in_place", "yaml-alias_bomb-run"]
)
def test_hostile_case_in_a_real_process(case_id, tmp_path):
    problem = check_case(CASES[case_id], tmp_path / "w", _subprocess)
    assert not problem, problem


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_folder(tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_bytes(jsonl(TRACES))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for argv in (
            ["score", traces, "-o", locked / "o.jsonl"],
            ["table", traces, "-o", locked / "sub" / "t.parquet"],
            ["tag", traces, "--out", locked / "t.jsonl"],
        ):
            code, err = run_in_process([str(a) for a in argv])
            assert code == 2 and "permission denied" in err and err.count("\n") == 1, err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
