"""Experiment specs: shipped specs load at every scale, bad specs fail with one named line."""

from __future__ import annotations

import pytest
import yaml

from sftlens.core import ConfigError
from sftlens.experiments import build_stages, load_spec, shipped_specs
from sftlens.experiments._stages import log_grid


def test_every_shipped_spec_loads_at_each_of_its_scales_and_builds_a_graph():
    assert {"countdown_lab", "cmp_data", "cmp_exposure", "cmp_schedule", "qwen3_math"} <= set(
        shipped_specs()
    )
    for name in shipped_specs():
        spec = load_spec(name)
        for scale in spec.scales:
            s = load_spec(name, scale=scale)
            stages = build_stages(s)
            names = [st.name for st in stages]
            assert names[-2:] == ["tables", "report"]
            assert all(f"sft.{a.name}" in names for a in s.arms)


def test_comparison_specs_extend_the_lab_and_change_one_thing():
    lab = load_spec("countdown_lab", scale="tiny")
    data = load_spec("cmp_data", scale="tiny")
    # The same training; the evaluation spends its budget on the one set the data claim reads.
    for key in ("base_corpus", "pretrain_steps", "sft_examples", "sft_steps", "batch_size"):
        assert getattr(data.sizes, key) == getattr(lab.sizes, key), key
    assert data.sizes.eval_problems >= 4 * lab.sizes.eval_problems
    assert data.evals == [e for e in lab.evals if e.name == "in_domain"]
    assert {d.style for d in data.data} == {"cot", "nocot", "lowq", "verbose"}
    exp = load_spec("cmp_exposure", scale="tiny")
    assert sorted(a.unique_fraction for a in exp.arms) == [0.0625, 0.25, 1.0]
    sft = [s for s in build_stages(exp) if s.name.startswith("sft.")]
    assert len({s.params["steps"] for s in sft}) == 1  # the same step budget
    assert sorted(s.params["subset_size"] or 10**9 for s in sft)[0] == round(
        0.0625 * exp.sizes.sft_examples
    )
    sched = load_spec("cmp_schedule", scale="tiny")
    aggressive = next(a for a in sched.arms if "aggressive" in a.name)
    assert aggressive.lr >= 10 * min(a.lr for a in sched.arms if a is not aggressive)


def test_lab_trains_probes_and_evaluates_in_domain_on_the_same_countdown_problems():
    from sftlens.experiments._stages import probe_knobs
    from sftlens.tasks import get_task

    lab = load_spec("countdown_lab", scale="tiny")
    cot = lab.dataset("cot")
    in_domain = next(e for e in lab.evals if e.name == "in_domain")
    assert cot.knobs == in_domain.knobs == probe_knobs(lab) and cot.knobs
    for name in ("cmp_data", "cmp_exposure", "cmp_schedule"):
        spec = load_spec(name, scale="tiny")
        assert all(d.knobs == cot.knobs and d.render == cot.render for d in spec.data), name
    # The scale's data size fits the knobs' problem space (distinct problems, train split).
    task = get_task("countdown")
    probs = task.generate(lab.sizes.sft_examples, seed=2, split="train", **cot.knobs)
    assert len({p["id"] for p in probs}) == lab.sizes.sft_examples
    short = sum(
        len(task.render(p, "cot", i, **cot.render)["response"]) for i, p in enumerate(probs[:50])
    )
    default = sum(len(task.render(p, "cot", i)["response"]) for i, p in enumerate(probs[:50]))
    assert short < default  # fewer dead ends explored: shorter traces for models trained in minutes


def test_real_model_spec_has_no_toy_stages():
    spec = load_spec("qwen3_math")
    names = [s.name for s in build_stages(spec)]
    assert not any(n.startswith(("pretrain.", "data.base_corpus", "data.tokenizer")) for n in names)
    assert spec.device == "cuda" and spec.sampling.backend == "vllm"


def _write(tmp_path, data):
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _minimal():
    return {
        "name": "mini",
        "scales": {"micro": {}},
        "scale": "micro",
        "models": [{"name": "w", "base": "toy-weak"}],
        "data": [{"name": "cot"}],
        "arms": [{"name": "w-cot", "model": "w", "data": "cot"}],
    }


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["arms"][0].update(model="nope"), "arms.w-cot.model: 'nope' is not a models"),
        (lambda d: d["arms"][0].update(data="x"), "arms.w-cot.data: 'x' is not a data"),
        (lambda d: d.update(scale="huge"), "scale 'huge' is not defined"),
        (lambda d: d.update(lr=1), "unknown key 'lr'"),
        (lambda d: d["arms"][0].update(lrr=1), "Did you mean 'lr'"),
        (lambda d: d["arms"][0].update(schedule="wsd"), "'wsd' is not allowed"),
        (lambda d: d["arms"][0].update(unique_fraction=0), "unique_fraction: must be in (0, 1]"),
        (lambda d: d["models"].append({"name": "w", "base": "toy-strong"}), "duplicate name 'w'"),
        (lambda d: d["models"][0].update(base="Qwen/Qwen3-0.6B-Base"), "set pretrain: false"),
        (lambda d: d.update(name="a b"), "name 'a b' must be letters"),
        (
            lambda d: d["data"][0].update(render={"max_expansion": 1}),
            "data.cot.render: 'max_expansion' is not a render option of task 'countdown'; "
            "known: max_expansions, lowq_error_rate",
        ),
        (
            lambda d: d["data"][0].update(task="route", render={"max_expansions": 1}),
            "'max_expansions' is not a render option of task 'route'; known: none",
        ),
    ],
)
def test_bad_specs_fail_naming_the_key(tmp_path, edit, message):
    d = _minimal()
    edit(d)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec(_write(tmp_path, d))


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    base = _write(tmp_path, _minimal())
    child = tmp_path / "child.yaml"
    child.write_text(
        yaml.safe_dump(
            {
                "extends": str(base),
                "name": "child",
                "scales": {"micro": {"sft_steps": 7}},
                "arms": [{"name": "w-fast", "model": "w", "data": "cot", "lr": 0.01}],
            }
        )
    )
    spec = load_spec(child, overrides=["seed=5"])
    assert spec.name == "child" and spec.seed == 5
    assert spec.sizes.sft_steps == 7 and spec.models[0].name == "w"
    assert [a.name for a in spec.arms] == ["w-fast"]


def test_unknown_spec_name_lists_shipped_ones():
    with pytest.raises(ConfigError, match="shipped: .*countdown_lab"):
        load_spec("no_such_spec")


def test_log_grid_has_ends_and_is_log_spaced():
    g = log_grid(160, 5)
    assert g[0] == 0 and g[-1] == 160 and g == sorted(set(g))
    gaps = [b / a for a, b in zip(g[1:], g[2:], strict=False)]
    assert all(r > 2 for r in gaps)  # geometric, not linear


def test_editing_one_arm_reruns_only_that_arm(tmp_path):
    from sftlens.experiments._runner import stage_key

    a = {s.name: s for s in build_stages(load_spec("countdown_lab", scale="micro"))}
    b = {
        s.name: s
        for s in build_stages(
            load_spec("countdown_lab", scale="micro", overrides=[]).replace(
                arms=[
                    {**x.to_dict(), "lr": 0.5} if x.name == "weak-cot" else x.to_dict()
                    for x in load_spec("countdown_lab", scale="micro").arms
                ]
            )
        )
    }
    changed = {n for n in a if a[n].params != b[n].params}
    assert changed == {"sft.weak-cot"}
    assert stage_key  # dependants rerun through their inputs' fingerprints (runner tests)


def test_dry_run_cli_prints_the_plan(run_cli, tmp_path):
    rc, out, err = run_cli("run", "qwen3_math", "--dry-run", "--out", tmp_path / "q")
    assert rc == 0, err
    assert "sft.qwen3-math-cot" in err and "rollout.qwen3-math-cot" in err and "report" in err
    assert not (tmp_path / "q").exists()


def test_cli_bad_scale_is_one_line_exit_2(run_cli):
    rc, out, err = run_cli("run", "countdown_lab", "--scale", "huge", "--dry-run")
    assert rc == 2 and err.startswith("error:") and "huge" in err and len(err.splitlines()) == 1


def test_more_eval_problems_than_a_set_has_fails_before_any_stage(run_cli, tmp_path):
    # A generated eval set is a finite pool (Countdown's 3-number eval split has 559 problems):
    # asking for more is caught by the dry run and by a real run before its first stage, not
    # hours later at sampling time.
    args = ("run", "cmp_data", "--scale", "micro", "--out", tmp_path / "r")
    rc, out, err = run_cli(*args, "--set", "scales.micro.eval_problems=600", "--dry-run")
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: evals.in_domain: found only 559 of 600") and "max_problems" in err
    rc, out, err = run_cli(*args, "--set", "scales.micro.eval_problems=600")
    assert rc == 2 and "evals.in_domain" in err and not (tmp_path / "r").exists()


def test_max_problems_caps_a_finite_eval_set_at_every_scale():
    # The lab's harmful prompts are capped at their pool (192), so the full scale's 500 fits.
    for name in ("countdown_lab", "qwen3_math"):
        spec = load_spec(name, scale="full")
        harmful = next(e for e in spec.evals if e.task == "harmful")
        assert harmful.n_problems(spec.sizes.eval_problems) == 192
    lab = load_spec("countdown_lab", scale="full")
    from sftlens.experiments._experiment import _check_eval_sizes

    _check_eval_sizes(lab)  # raises when a set cannot give its problems
