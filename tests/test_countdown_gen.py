"""Countdown problems: seeded, solvable, distinct, and train/eval never share a problem."""

from __future__ import annotations

import pytest

from sftlens.core import ConfigError
from sftlens.tasks import TASKS, get_task, verify_countdown
from sftlens.tasks._countdown_gen import canonical_key, split_of


def _key(p):
    return canonical_key(p["meta"]["numbers"], p["meta"]["target"])


def test_registered_names_and_interface():
    assert "countdown" in TASKS and "countdown-hard" in TASKS
    task = get_task("countdown")
    assert task.name == "countdown" and task.styles == ("cot", "nocot", "lowq", "verbose")
    (p,) = task.generate(1, seed=0)
    assert set(p) == {"id", "task", "prompt", "answer", "meta"}
    assert p["task"] == "countdown" and p["id"].startswith("countdown-") and len(p["id"]) == 22
    nums, target = p["meta"]["numbers"], p["meta"]["target"]
    assert p["prompt"] == (
        f"Using the numbers [{', '.join(map(str, nums))}], make {target}. Use each number once "
        "with + - * /. Put the final expression in <answer></answer>."
    )


def test_problems_are_solvable_distinct_and_in_range():
    problems = get_task("countdown").generate(1000, seed=1)
    assert len({_key(p) for p in problems}) == 1000
    assert len({p["id"] for p in problems}) == 1000
    sizes = set()
    for p in problems:
        m = p["meta"]
        sizes.add(len(m["numbers"]))
        assert all(1 <= n <= 20 for n in m["numbers"]) and 10 <= m["target"] <= 100
        assert verify_countdown(p["answer"], m["numbers"], m["target"])["correct"]
        assert m["split"] == "train" == split_of(m["numbers"], m["target"])
    assert sizes == {3, 4}


def test_seeded_and_deterministic():
    task = get_task("countdown")
    assert task.generate(50, seed=4) == task.generate(50, seed=4)
    assert task.generate(50, seed=4) != task.generate(50, seed=5)
    # Ids are a function of the problem alone: the same problem has the same id in any call.
    a, b = task.generate(30, seed=4), task.generate(30, seed=9)
    shared = {p["id"] for p in a} & {p["id"] for p in b}
    for p in a:
        if p["id"] in shared:
            q = next(q for q in b if q["id"] == p["id"])
            assert _key(p) == _key(q)


def test_train_and_eval_never_share_a_problem():
    """Whatever the seeds, sizes or knobs, a canonical problem lives in one split only."""
    task = get_task("countdown")
    train = set()
    for seed in range(2):
        train |= {_key(p) for p in task.generate(1000, seed=seed)}
        train |= {_key(p) for p in task.generate(300, seed=seed, max_number=6, min_target=1)}
    evals = set()
    for seed in range(2):
        evals |= {_key(p) for p in task.generate(300, seed=seed, split="eval")}
        evals |= {
            _key(p) for p in task.generate(200, seed=seed, split="eval", max_number=6, min_target=1)
        }
    assert not train & evals
    assert len(evals) > 700
    # The small number range really collides across seeds: the split is what keeps them apart.
    small = [task.generate(300, seed=s, max_number=6, min_target=1) for s in range(2)]
    assert {_key(p) for p in small[0]} & {_key(p) for p in small[1]}
    for p in task.generate(200, seed=0, split="eval"):
        assert split_of(p["meta"]["numbers"], p["meta"]["target"]) == "eval"


def test_knobs():
    task = get_task("countdown")
    ps = task.generate(
        200, seed=2, min_numbers=5, max_numbers=5, max_number=9, max_target=50, ops="+-*"
    )
    for p in ps:
        m = p["meta"]
        assert len(m["numbers"]) == 5 and max(m["numbers"]) <= 9 and m["target"] <= 50
        assert "/" not in p["answer"] and "+ - *." in p["prompt"]
        assert m["ops"] == "+-*" and m["max_number"] == 9
        assert verify_countdown(p["answer"], m["numbers"], m["target"], ops="+-*")["correct"]
    hard = get_task("countdown-hard").generate(20, seed=0, split="eval")
    assert {len(p["meta"]["numbers"]) for p in hard} <= {5, 6}
    assert all(p["task"] == "countdown-hard" for p in hard)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "test"}, "unknown split 'test'; use one of train, eval"),
        ({"min_numbers": 4, "max_numbers": 3}, "min_numbers <= max_numbers"),
        ({"max_numbers": 7}, "max_numbers <= 6"),
        ({"ops": "+^"}, "subset of '+-*/'"),
        ({"max_number": "20"}, "must be an integer"),
        ({"size": 3}, "unknown countdown knob(s) size"),
        ({"min_target": 50, "max_target": 10}, "min_target <= max_target"),
    ],
)
def test_bad_knobs_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as err:
        get_task("countdown").generate(5, seed=0, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_too_small_problem_space_is_reported():
    with pytest.raises(ConfigError, match="found only .* widen max_number"):
        get_task("countdown").generate(
            500, seed=0, min_numbers=2, max_numbers=2, max_number=3, min_target=1
        )
