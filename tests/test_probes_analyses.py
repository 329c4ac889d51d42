"""The procedure-vs-surface analyses end to end on a real tiny Llama: dead-end probe, CKA
drift, steering, appropriateness, plots and the `sftlens probe` CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sftlens.probes import (
    ProbeConfig,
    appropriateness_table,
    best_layer,
    causal_check,
    cka_drift,
    countdown_examples,
    dead_end_probe,
    linear_cka,
    plot_probe_auroc,
    steering,
)
from sftlens.probes._analyses import CHECKPOINT_TABLE, DIRECTIONS_FILE, LENS_FILE
from sftlens.tasks import get_task


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Two small cores shared by many processes: one torch thread is several times faster.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir):
    return tiny_model_dir.parent.parent  # <tmp>/ holding checkpoints/step-000000


@pytest.fixture(scope="module")
def examples():
    return countdown_examples(24, seed=1)


@pytest.fixture(scope="module")
def dead_end(tmp_path_factory, run_dir, examples):
    out = tmp_path_factory.mktemp("dead_end")
    cfg = ProbeConfig(n_splits=3, batch_size=8)
    return out, dead_end_probe({"tiny": run_dir}, out, cfg, examples=examples)


@pytest.mark.integration
def test_dead_end_probe_table_and_artefacts(dead_end, run_dir, examples):
    out, table = dead_end
    assert set(table["probe"]) == {"logreg", "diffmean", "shuffled", "surface"}
    assert set(table["layer"]) == {-1, 0, 1} or set(table["layer"]) == {0, 1}
    assert set(table["position_kind"]) == {"step_end", "pre_next"}
    assert set(table["subset"]) == {"all_steps", "multi_number"}
    assert (table["transformer_lens"].str.startswith("4.")).all()
    assert set(table["loading_mode"]) == {"boot_transformers"}
    assert (table["n_groups"] == len(examples)).all()
    auroc = table[table["metric"] == "auroc"]["value"]
    assert auroc.between(0, 1).all()
    ck = out / "tiny" / "step-000000"
    for f in (CHECKPOINT_TABLE, DIRECTIONS_FILE, LENS_FILE):
        assert (ck / f).is_file()
    assert (out / "dead_end.parquet").is_file() and (out / "dead_end.csv").is_file()
    hook, layer = best_layer(table, "tiny", 0)
    assert hook == f"blocks.{layer}.hook_resid_post"
    # A rerun reuses the finished checkpoint table.
    again = dead_end_probe({"tiny": run_dir}, out, ProbeConfig(n_splits=3), examples=examples)
    pd.testing.assert_frame_equal(again, table)
    png = plot_probe_auroc(table, out / "auroc.png")
    assert png.is_file() and png.with_suffix(".csv").is_file()


def test_linear_cka_invariances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, rng.normal(size=(200, 16))) < 0.2


@pytest.mark.integration
def test_cka_drift_of_a_checkpoint_against_itself_is_one(tmp_path, run_dir, examples):
    t = cka_drift({"tiny": run_dir}, tmp_path, ProbeConfig(batch_size=8), examples=examples[:6])
    assert set(t["layer"]) == {0, 1}
    assert np.allclose(t["value"], 1.0)


def test_steering_hook_changes_then_restores_the_output(tiny_model_dir):
    from sftlens.core import load_causal_lm

    model = load_causal_lm(tiny_model_dir)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = model(ids).logits
        with steering(model, 0, torch.ones(32)):
            steered = model(ids).logits
        after = model(ids).logits
    assert not torch.allclose(before, steered)
    torch.testing.assert_close(before, after)


@pytest.mark.integration
def test_causal_check_table(dead_end, tiny_model_dir):
    out, table = dead_end
    _, layer = best_layer(table)
    problems = countdown_examples(3, seed=2)
    t = causal_check(
        tiny_model_dir, out / "tiny" / "step-000000", layer, alphas=(-1.0, 0.0, 1.0),
        problems=problems, max_new_tokens=12, out=out / "steer.parquet",
    )  # fmt: skip
    assert set(t["alpha"]) == {-1.0, 0.0, 1.0}
    assert {"backtrack_rate", "accuracy", "n_tokens"} <= set(t["metric"])
    assert (out / "steer.csv").is_file()


def _trace(i, model, step, completion, correct):
    return {
        "id": f"{model}-{step}-{i}",
        "problem_id": "countdown-x",
        "task": "countdown",
        "model": model,
        "checkpoint": {"path": "x", "step": step},
        "prompt": "Using the numbers [9, 13, 6], make 39.",
        "meta": {"numbers": [9, 13, 6], "target": 39, "ops": "+-*/"},
        "completion": completion,
        "n_tokens": len(completion) // 2,
        "score": {"correct": correct},
    }


def test_appropriateness_table_separates_precise_from_random_backtracks():
    from sftlens.trace_tagger import Tagger

    good = (
        "13-6=7. Left: 7 9.\n7*9=63, not 39. 7+9=16, not 39.\nDead end, going back.\n"
        "9-6=3. Left: 3 13.\n3*13=39. Check: (9-6)*13 = 39. Correct.\n<answer>(9-6)*13</answer>"
    )
    bad = (
        "9-6=3. Left: 3 13.\nDead end, going back.\n9-6=3. Left: 3 13.\n"
        "3*13=39, not 39.\n<answer>(9-6)*13</answer>"
    )
    traces = [_trace(i, "strong", 10, good, True) for i in range(2)]
    traces += [_trace(i, "weak", 10, bad, False) for i in range(2)]
    tags = [{"id": t["id"], **Tagger().tag(t["completion"])} for t in traces]
    table = appropriateness_table(traces, tags)
    v = table.set_index(["model", "metric"])["value"]
    assert v[("strong", "backtrack_precision")] == 1.0
    assert v[("weak", "backtrack_precision")] == 0.0
    assert v[("strong", "accuracy")] == 1.0 and v[("weak", "accuracy")] == 0.0
    assert v[("strong", "count_backtracking")] >= 1 and v[("weak", "count_backtracking")] >= 1
    assert {"n_tokens", "n_chars"} <= set(table["metric"])


def test_appropriateness_needs_tags_for_every_trace():
    from sftlens.core import DataError

    with pytest.raises(DataError, match="have no tags"):
        appropriateness_table([_trace(0, "m", 1, "x", False)], [])


@pytest.mark.integration
def test_cli_dead_end_and_errors(run_cli, run_dir, tmp_path):
    rc, out, err = run_cli(
        "probe", "dead-end", "-m", f"tiny={run_dir}", "-o", tmp_path, "--n-problems", "12",
        "--set", "n_splits=2", "--set", "kinds=[step_end]",
    )  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "dead_end.parquet").is_file() and (tmp_path / "dead_end_auroc.png").is_file()
    assert "logreg" in out
    rc, _, err = run_cli("probe", "dead-end", "-m", f"x={tmp_path / 'nope'}", "-o", tmp_path)
    assert rc == 2 and "no such run or model directory" in err
    rc, _, err = run_cli(
        "probe", "dead-end", "-m", f"x={run_dir}", "-o", tmp_path, "--set", "n_split=2"
    )
    assert rc == 2 and "n_split" in err


@pytest.mark.integration
def test_steer_cli_reads_the_sweeps_problems_and_refuses_a_file_without_countdown(
    dead_end, tiny_model_dir, tmp_path, run_cli
):
    import json

    out, table = dead_end
    _, layer = best_layer(table)
    lines = [
        {**p, "eval_set": "in_domain"}
        for p in get_task("countdown").generate(2, seed=5, split="eval", max_number=9)
    ]
    lines.append({"id": "r", "task": "route", "prompt": "x", "meta": {}, "eval_set": "cross"})
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(x) + "\n" for x in lines))
    args = ["probe", "steer", tiny_model_dir, "--directions", out / "tiny" / "step-000000"]
    args += ["--layer", layer, "--alphas", "0", "--max-new-tokens", 8]
    rc, stdout, _ = run_cli(*args, "--problems", problems, "-o", tmp_path / "s.parquet")
    assert rc == 0 and "accuracy" in stdout
    steered = pd.read_parquet(tmp_path / "s.parquet")
    assert set(steered[steered["metric"] == "accuracy"]["n"]) == {2}  # the file's 2 countdown lines
    rc, _, err = run_cli(
        *args, "--problems", problems, "--eval-set", "cross", "-o", tmp_path / "t.parquet"
    )
    assert rc == 2 and "no countdown problems with eval_set 'cross'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "t.parquet").exists()
    rc, _, err = run_cli(*args, "--eval-set", "in_domain", "-o", tmp_path / "u.parquet")
    assert rc == 2 and "pass --problems too" in err and not (tmp_path / "u.parquet").exists()
