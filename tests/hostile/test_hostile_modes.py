"""Outputs respect the umask: files 0666 & ~umask, folders 0777 & ~umask (not 0600/0700)."""

from __future__ import annotations

import os
import stat

import pytest

from sftlens.core import atomic_dir, write_json


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_outputs_follow_the_umask(tmp_path, run_cli, umask_027):
    out = tmp_path / "new" / "route.jsonl"
    rc, _, err = run_cli("data", "route", "--n", "3", "--out", out)
    assert rc == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o750
    with atomic_dir(tmp_path / "ckpt") as d:
        write_json(d / "config.json", {})
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "ckpt" / "config.json").stat().st_mode) == 0o640
