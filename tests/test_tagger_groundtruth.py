"""Agreement with the task world's exact backtrack / verify events (all cot phrasings)."""

from __future__ import annotations

import pytest

from sftlens import tasks
from sftlens.trace_tagger import Tagger
from sftlens.trace_tagger._evaluate import evaluate_events, span_agreement


def test_span_agreement_counts_overlaps():
    c = span_agreement([(0, 5), (10, 12), (30, 31)], [(4, 8), (11, 20), (40, 50)])
    assert c == {"tp_pred": 2, "n_pred": 3, "tp_ref": 2, "n_ref": 3}


@pytest.mark.parametrize("task_name", ["countdown", "route"])
def test_f1_on_ground_truth_events(task_name):
    task = tasks.get_task(task_name)
    problems = task.generate(60, seed=11, split="train")
    examples = [task.render(p, "cot", seed) for seed, p in enumerate(problems)]
    res = evaluate_events(Tagger(), examples)
    for label in ("backtracking", "verification"):
        m = res["sentence"][label]
        assert m["n_ref"] > 20, f"{task_name} produced too few {label} events to judge"
        assert m["f1"] >= 0.95, (task_name, label, m)


def test_task_checks_flow_into_the_table():
    """Tags -> Countdown behaviour checks -> per-checkpoint table (the probes stage's wiring)."""
    from sftlens.trace_tagger import tag_table

    task = tasks.get_task("countdown")
    problems = task.generate(12, seed=5, split="train")
    examples = [task.render(p, "cot", i) for i, p in enumerate(problems)]
    tagger = Tagger()
    tags, traces, checks = [], [], {}
    for i, (p, ex, tg) in enumerate(
        zip(problems, examples, tagger.tag_many([e["response"] for e in examples]), strict=True)
    ):
        tid = f"t{i}"
        tags.append({"id": tid, **tg})
        traces.append({"id": tid, "model": "toy", "task": "countdown",
                       "checkpoint": {"step": 0}, "score": {"correct": True}})  # fmt: skip
        checks[tid] = tasks.countdown_behaviour_checks(ex["response"], p, tg["spans"])
    df = tag_table(tags, traces, checks=checks, n_boot=50)
    rate = df[df["metric"] == "check/verification_correct_rate"]
    # Generated cot traces only state true checks.
    assert len(rate) and (rate["value"] == 1.0).all()
