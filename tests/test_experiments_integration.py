"""End to end on the real stages at the micro scale: every shipped toy spec, and Ctrl-C + resume."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftlens.core import read_json
from sftlens.experiments import load_spec, run_experiment

pytestmark = pytest.mark.integration

# The comparison specs are checked on one eval set without probes and refusal (countdown_lab
# covers those); every arm still trains, samples, is tagged and reaches the report.
LIGHT = [
    "analysis.probe=false",
    "analysis.refusal=false",
    "evals=[{name: in_domain, task: countdown}]",
]


def _wait_for(path: Path, stage: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read().decode()[-2000:]}")
        if path.is_file():
            try:
                st = read_json(path)["stages"].get(stage, {})
            except Exception:  # being replaced right now
                st = {}
            if st.get("status") == "done":
                return
        time.sleep(0.5)
    raise AssertionError(f"stage {stage} did not finish in {timeout} s")


def test_countdown_lab_ctrl_c_then_rerun_resumes_and_writes_the_report(tmp_path):
    run = tmp_path / "lab"
    cmd = [sys.executable, "-m", "sftlens", "run", "countdown_lab", "--scale", "micro"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(run / "manifest.json", "pretrain.toy-weak", proc)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, proc.stderr.read().decode()[-2000:]
    before = read_json(run / "manifest.json")["stages"]
    done = {k: v["finished"] for k, v in before.items() if v["status"] == "done"}
    assert "pretrain.toy-weak" in done and "report" not in done

    index = run_experiment("countdown_lab", run, scale="micro", stream=io.StringIO())
    after = read_json(run / "manifest.json")["stages"]
    # Completed stages were not redone (same finish time, one attempt each).
    for name, finished in done.items():
        assert after[name]["finished"] == finished and after[name]["attempts"] == 1, name
    assert all(v["status"] == "done" for v in after.values())
    assert index.is_file() and (run / "report" / "summary.md").is_file()
    spec = load_spec(run / "spec.yaml")
    assert spec.scale == "micro"
    for d in ("data", "models/strong-cot/checkpoints", "traces", "tags", "probes", "tables"):
        assert (run / d).is_dir(), d
    md = (run / "report" / "summary.md").read_text()
    for section in ("Accuracy and length", "Behaviours", "Dead-end probe", "Refusal", "Tagged"):
        assert f"## {section}" in md
    assert "not run" not in md
    man = read_json(run / "manifest.json")
    assert man["environment"]["packages"]["torch"] and man["seed"] == 0

    # A third run has nothing to do.
    out = io.StringIO()
    run_experiment("countdown_lab", run, scale="micro", stream=out)
    assert read_json(run / "manifest.json")["stages"] == after
    assert "17 of 17 stages up to date" in out.getvalue()


@pytest.mark.parametrize("name", ["cmp_data", "cmp_exposure", "cmp_schedule"])
def test_comparison_specs_run_end_to_end_at_micro_scale(tmp_path, name):
    index = run_experiment(
        name, tmp_path / name, scale="micro", overrides=LIGHT, stream=io.StringIO()
    )
    assert index.is_file()
    spec = load_spec(name)
    md = (index.parent / "summary.md").read_text()
    for a in spec.arms:
        assert (tmp_path / name / "models" / a.name / "checkpoints").is_dir()
        assert a.name in md
