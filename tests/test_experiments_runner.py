"""The stage runner: skip on unchanged fingerprints, rerun on change, resume after a kill."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sftlens.core import ConfigError, read_json
from sftlens.experiments._runner import (
    MANIFEST,
    Stage,
    StageUnavailable,
    format_plan,
    plan,
    run_stages,
)


def _log(run_dir: Path, name: str) -> None:
    with open(run_dir / "calls.log", "a") as f:
        f.write(name + "\n")


def _calls(run_dir: Path) -> list[str]:
    p = run_dir / "calls.log"
    return p.read_text().split() if p.exists() else []


def make_stages(b_factor: int = 2) -> list[Stage]:
    """Three real stages: numbers -> doubled numbers -> their sum (files in the run folder)."""

    def numbers(ctx):
        _log(ctx.run_dir, "numbers")
        ctx.path("data/numbers.json").write_text(json.dumps(list(range(ctx.params["n"]))))

    def scaled(ctx):
        _log(ctx.run_dir, "scaled")
        xs = json.loads((ctx.run_dir / "data/numbers.json").read_text())
        ctx.path("data/scaled.json").write_text(json.dumps([x * ctx.params["factor"] for x in xs]))

    def total(ctx):
        _log(ctx.run_dir, "total")
        xs = json.loads((ctx.run_dir / "data/scaled.json").read_text())
        ctx.path("tables/total.txt").write_text(str(sum(xs)))

    return [
        Stage("numbers", numbers, params={"n": 5}, outputs=("data/numbers.json",)),
        Stage(
            "scaled",
            scaled,
            deps=("numbers",),
            params={"factor": b_factor},
            outputs=("data/scaled.json",),
        ),
        Stage("total", total, deps=("scaled",), outputs=("tables/total.txt",)),
    ]


def test_second_run_skips_everything(tmp_path):
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    assert (tmp_path / "tables/total.txt").read_text() == "20"
    assert _calls(tmp_path) == ["numbers", "scaled", "total"]
    out = io.StringIO()
    items = run_stages(tmp_path, make_stages(), stream=out)
    assert [i.action for i in items] == ["skip"] * 3
    assert _calls(tmp_path) == ["numbers", "scaled", "total"]
    man = read_json(tmp_path / MANIFEST)
    assert set(man["stages"]) == {"numbers", "scaled", "total"}
    assert all(s["status"] == "done" for s in man["stages"].values())
    assert "packages" in man["environment"]


def test_changed_param_reruns_the_stage_and_its_dependants_only(tmp_path):
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    items = plan(tmp_path, make_stages(b_factor=3))
    assert [i.action for i in items] == ["skip", "run", "run"]
    assert "config or inputs changed" in items[1].reason
    run_stages(tmp_path, make_stages(b_factor=3), stream=io.StringIO())
    assert _calls(tmp_path) == ["numbers", "scaled", "total", "scaled", "total"]
    assert (tmp_path / "tables/total.txt").read_text() == "30"


def test_deleted_output_is_rebuilt_and_identical_bytes_keep_dependants(tmp_path):
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    (tmp_path / "data/numbers.json").unlink()
    # numbers reruns; it writes the same bytes, so 'scaled' stays up to date at run time.
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    assert _calls(tmp_path) == ["numbers", "scaled", "total", "numbers"]


def test_edited_output_is_detected(tmp_path):
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    (tmp_path / "tables/total.txt").write_text("999")
    items = plan(tmp_path, make_stages())
    assert items[2].action == "run" and "changed" in items[2].reason
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    assert (tmp_path / "tables/total.txt").read_text() == "20"


def test_force_prefix_reruns(tmp_path):
    run_stages(tmp_path, make_stages(), stream=io.StringIO())
    run_stages(tmp_path, make_stages(), force=["total"], stream=io.StringIO())
    assert _calls(tmp_path)[-1] == "total" and len(_calls(tmp_path)) == 4


def test_interrupt_resumes_at_the_interrupted_stage(tmp_path, monkeypatch):
    from sftlens.core import INTERRUPT_ENV

    stages = make_stages()
    # A real SIGINT as the second stage starts (the test hook of every long-running place).
    monkeypatch.setenv(INTERRUPT_ENV, "run.stage:2")
    with pytest.raises(KeyboardInterrupt):
        run_stages(tmp_path, stages, stream=io.StringIO())
    monkeypatch.delenv(INTERRUPT_ENV)
    man = read_json(tmp_path / MANIFEST)
    assert man["stages"]["numbers"]["status"] == "done"
    assert man["stages"]["scaled"]["status"] == "running"
    items = plan(tmp_path, stages)
    assert [i.action for i in items] == ["skip", "run", "run"]
    assert "resuming" in items[1].reason
    run_stages(tmp_path, stages, stream=io.StringIO())
    assert _calls(tmp_path) == ["numbers", "scaled", "total"]
    assert read_json(tmp_path / MANIFEST)["stages"]["scaled"]["attempts"] == 2


def test_dry_run_plan_lists_actions_and_outputs(tmp_path):
    text = format_plan(plan(tmp_path, make_stages()))
    assert "run" in text and "data/scaled.json" in text and "3 to run, 0 to skip" in text
    assert not (tmp_path / MANIFEST).exists()


def test_missing_package_function_blocks_with_the_stage_name(tmp_path):
    stages = make_stages()
    stages[2].requires = ("sftlens.core:no_such_function",)
    items = plan(tmp_path, stages)
    assert items[2].action == "blocked"
    with pytest.raises(StageUnavailable, match="stage 'total' cannot run: sftlens.core has no"):
        run_stages(tmp_path, stages, stream=io.StringIO())
    assert _calls(tmp_path) == []  # nothing ran before the check


def test_graph_errors_name_the_stage(tmp_path):
    stages = make_stages()
    with pytest.raises(ConfigError, match="'scaled' depends on 'nope'"):
        plan(tmp_path, [stages[0], Stage("scaled", stages[1].fn, deps=("nope",))])
    with pytest.raises(ConfigError, match="'numbers' is declared twice"):
        plan(tmp_path, [stages[0], stages[0]])


def test_progress_reports_steps_and_eta(tmp_path):
    def slow(ctx):
        for i in range(1, 4):
            ctx.step(i, 3)
        ctx.path("x.txt").write_text("x")

    out = io.StringIO()
    run_stages(tmp_path, [Stage("slow", slow, outputs=("x.txt",))], stream=out)
    text = out.getvalue()
    assert "[1/1] slow" in text and "step 3/3" in text and "ETA" in text and "done in" in text


KILL_SCRIPT = textwrap.dedent(
    """
    import io, os, signal, sys, json
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_experiments_runner import make_stages, _log
    from sftlens.experiments._runner import run_stages

    run_dir = Path(sys.argv[1])
    stages = make_stages()
    real = stages[1].fn

    def dies_once(ctx):
        if os.environ.get("KILL_ME"):
            _log(ctx.run_dir, "scaled-killed")
            ctx.path("data/scaled.json").write_text("[1, 2")  # a partial write
            os.kill(os.getpid(), signal.SIGKILL)
        real(ctx)

    stages[1].fn = dies_once
    run_stages(run_dir, stages, stream=io.StringIO())
    """
)


def test_sigkill_mid_stage_then_rerun_finishes_without_redoing_done_stages(tmp_path):
    script = tmp_path / "run_graph.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent)))
    run_dir = tmp_path / "run"
    env = {**os.environ, "KILL_ME": "1"}
    r = subprocess.run([sys.executable, str(script), str(run_dir)], env=env, capture_output=True)
    assert r.returncode == -signal.SIGKILL
    assert _calls(run_dir) == ["numbers", "scaled-killed"]
    env.pop("KILL_ME")
    r = subprocess.run([sys.executable, str(script), str(run_dir)], env=env, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    assert _calls(run_dir) == ["numbers", "scaled-killed", "scaled", "total"]
    assert (run_dir / "tables/total.txt").read_text() == "20"
