"""End to end on the real stages at the micro scale: every shipped toy spec, and Ctrl-C + resume."""

from __future__ import annotations

import io

import pytest

from sftlens.core import read_json
from sftlens.experiments import load_spec, run_experiment
from test_interrupt import assert_interrupted, run_interrupted

pytestmark = pytest.mark.integration

# The comparison specs are checked on one eval set without probes and refusal (countdown_lab
# covers those); every arm still trains, samples, is tagged and reaches the report.
LIGHT = [
    "analysis.probe=false",
    "analysis.refusal=false",
    "evals=[{name: in_domain, task: countdown}]",
]


def test_countdown_lab_ctrl_c_then_rerun_resumes_and_writes_the_report(tmp_path):
    run = tmp_path / "lab"
    cmd = ("run", "countdown_lab", "--scale", "micro", "--out", run)
    # Ctrl-C after the 5th optimizer step of the process: toy-weak's 3 pretraining steps are
    # done, toy-strong is 2 steps into its own.
    proc = run_interrupted(*cmd, point="train.step:5", timeout=600)
    assert_interrupted(proc, *cmd)
    before = read_json(run / "manifest.json")["stages"]
    done = {k: v["finished"] for k, v in before.items() if v["status"] == "done"}
    assert "pretrain.toy-weak" in done and "pretrain.toy-strong" not in done
    assert before["pretrain.toy-strong"]["status"] == "running" and "report" not in done

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
    for section in (
        "Accuracy and length", "Behaviours", "Dead-end probe", "Strong vs weak probe, paired",
        "Causal check", "Refusal", "Tagged",
    ):  # fmt: skip
        assert f"## {section}" in md
    # The probe row reads the paired strong-minus-weak table and quotes the causal check.
    assert "strong minus weak" in md and "Causal check in strong-cot" in md
    assert "not run" not in md
    man = read_json(run / "manifest.json")
    assert man["environment"]["packages"]["torch"] and man["seed"] == 0

    # A third run has nothing to do.
    out = io.StringIO()
    run_experiment("countdown_lab", run, scale="micro", stream=out)
    assert read_json(run / "manifest.json")["stages"] == after
    assert "20 of 20 stages up to date" in out.getvalue()


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
