"""Ctrl-C is never lost: at every named point the run stops with exit 130, says how to resume,
leaves nothing half-written, and rerunning the same command resumes.

Each interrupt is a real SIGINT the process sends itself at a named point
(``SFTLENS_TEST_INTERRUPT_AT``), in a process that inherited SIGINT as ignored, as a background
job of a non-interactive shell does: before the CLI restored the handler, such a run swallowed
the signal and went on to the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sftlens.core import INTERRUPT_ENV, INTERRUPT_POINTS, find_checkpoints, read_jsonl
from sftlens.train import TrainConfig

RESUME_HINT = "interrupted; to resume, rerun the same command: sftlens "


def run_interrupted(*args, point: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`sftlens ARGS` in a subprocess started with SIGINT ignored, interrupted at `point`."""
    env = {**os.environ, INTERRUPT_ENV: point, "TOKENIZERS_PARALLELISM": "false"}
    # An ignored disposition survives fork and exec: the child starts as a background job would.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sftlens", *map(str, args)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_interrupted(proc: subprocess.CompletedProcess, *args) -> None:
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(RESUME_HINT), last
    assert str(args[0]) in last and str(args[-1]) in last


def test_every_point_is_named_once():
    assert len(set(INTERRUPT_POINTS)) == len(INTERRUPT_POINTS)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/src/sftlens"
    calls = subprocess.run(
        ["grep", "-rhoE", r"interrupt_point\(\"[a-z.]+\"\)", src], capture_output=True, text=True
    ).stdout.split()
    assert sorted({c.split('"')[1] for c in calls}) == sorted(INTERRUPT_POINTS)


def test_in_process_ctrl_c_prints_the_resume_command(run_cli, tmp_path, monkeypatch):
    texts = tmp_path / "t.jsonl"
    texts.write_text("".join(json.dumps({"completion": f"Wait, {i}."}) + "\n" for i in range(3)))
    monkeypatch.setenv(INTERRUPT_ENV, "tag.spacy")
    rc, _, err = run_cli("tag", texts, "--out", tmp_path / "tags.jsonl")
    assert rc == 130
    assert err.strip().splitlines()[-1] == (
        f"{RESUME_HINT}tag {texts} --out {tmp_path / 'tags.jsonl'}"
    )


# --------------------------------------------------------------------------- train


def _sft(tmp_path):
    p = tmp_path / "sft.jsonl"
    rows = [
        {"prompt": f"Add {a} and {a + 2}.", "response": f"{a} + {a + 2} = {2 * a + 2}."}
        for a in range(24)
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


@pytest.mark.integration
@pytest.mark.parametrize("point", ["train.data:4", "train.step:3"])
def test_train_ctrl_c_then_the_same_command_resumes(point, tmp_path, tiny_model_dir, run_cli):
    cfg = TrainConfig.from_dict(
        {
            "objective": "sft",
            "model": str(tiny_model_dir),
            "data": str(_sft(tmp_path)),
            "out_dir": str(tmp_path / "run"),
            "max_steps": 6,
            "batch_size": 4,
            "max_length": 48,
            "grid": {"kind": "every", "every": 2},
            "log_every": 1,
            "progress": False,
        }
    )
    y = tmp_path / "train.yaml"
    cfg.save(y)
    proc = run_interrupted("train", "--config", y, point=point)
    assert_interrupted(proc, "train", y)
    # Step 3 finished (or step 4's batch was being built): checkpoints 0 and 2 are complete,
    # and no half-written checkpoint is left under a final name.
    assert [c.step for c in find_checkpoints(tmp_path / "run")] == [0, 2]
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] != []
    assert all(p.name.startswith("step-") for p in (tmp_path / "run" / "checkpoints").iterdir())
    # The same command, no --resume: it continues from step 2 and logs each step once.
    rc, _, err = run_cli("train", "--config", y)
    assert rc == 0, err
    assert [c.step for c in find_checkpoints(tmp_path / "run")] == [0, 2, 4, 6]
    assert [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


# --------------------------------------------------------------------------- tag


def _texts(tmp_path, n=40):
    p = tmp_path / "traces.jsonl"
    rows = [
        {"id": f"t{i}", "completion": f"Try {i}*3 = {3 * i}. Wait, that is wrong. Let me check."}
        for i in range(n)
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


@pytest.mark.integration
@pytest.mark.parametrize(("point", "workers"), [("tag.pool:2", 2), ("tag.spacy:25", 1)])
def test_tag_ctrl_c_then_the_same_command_resumes(point, workers, tmp_path, run_cli):
    src, out = _texts(tmp_path), tmp_path / "tags.jsonl"
    args = ("tag", src, "--out", out, "--workers", workers)
    proc = run_interrupted(*args, point=point)
    assert_interrupted(proc, *args)
    assert not out.exists()  # only complete files get the final name
    partial = list(read_jsonl(out.with_name(out.name + ".partial"), allow_partial_tail=True))
    assert 0 < len(partial) < 40
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    resumed = list(read_jsonl(out))
    assert [r["id"] for r in resumed] == [f"t{i}" for i in range(40)]
    assert resumed[: len(partial)] == partial  # the tagged prefix was kept, not redone
    rc, _, err = run_cli("tag", src, "--out", tmp_path / "fresh.jsonl")
    assert rc == 0, err
    assert list(read_jsonl(tmp_path / "fresh.jsonl")) == resumed
