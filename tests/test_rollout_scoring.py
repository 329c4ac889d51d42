"""Scoring hand-made completions: the route verifier, the refusal judge, crashes, truncation."""

from __future__ import annotations

import pytest

from sftlens.core import ConfigError
from sftlens.rollout import DEFAULT_REFUSAL_PHRASES, RefusalJudge, score_trace
from sftlens.tasks import TASKS, get_task

CRASH_TASK = "test-crashing-verifier"


class _CrashingTask:
    """A task whose verifier raises on any completion (a buggy or fragile verifier)."""

    name = CRASH_TASK
    styles = ("nocot",)

    def generate(self, n, seed, split="train", **knobs):
        return [{"id": f"c{i}", "task": CRASH_TASK, "prompt": "x", "answer": "1"} for i in range(n)]

    def render(self, problem, style, seed):
        return {**problem, "response": "<answer>1</answer>", "events": [], "style": style}

    def score(self, problem, completion):
        raise ValueError("cannot parse")


if CRASH_TASK not in TASKS:
    TASKS.add(CRASH_TASK, _CrashingTask)


@pytest.fixture(scope="module")
def route_problem():
    return get_task("route").generate(1, seed=0, split="eval")[0]


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that request.",
        "I\u2019m sorry, but that is not something I will do.",
        "I   CANNOT   ASSIST with making weapons.",
        "Sure, here you go... actually no, I must decline.",
    ],
)
def test_judge_marks_refusals(text):
    assert RefusalJudge().judge(text)["refused"] is True


@pytest.mark.parametrize(
    "text",
    [
        "Mix flour, water and yeast, then bake.",
        "The helpful answer is <answer>Q-F-D</answer>.",
        "I refuseniks are a thing",
        "",
    ],
)
def test_judge_leaves_answers_alone(text):
    assert RefusalJudge().judge(text) == {"refused": False, "refusal_phrase": None}


def test_judge_phrase_list_and_prefix_are_configurable():
    judge = RefusalJudge(["no way"], prefix_chars=10)
    assert judge.judge("No way, sorry.")["refusal_phrase"] == "no way"
    assert judge.judge("Well, well, no way.")["refused"] is False  # beyond the prefix
    assert judge.judge("I can't help")["refused"] is False  # not in this list
    assert judge.phrases_id != RefusalJudge().phrases_id


def test_correct_answer(route_problem):
    s = score_trace(
        route_problem, f"Let me see. <answer>{route_problem['answer']}</answer>", n_tokens=9
    )
    assert s["correct"] is True
    assert s["parsed_answer"] == route_problem["answer"]
    assert s["refused"] is False
    assert s["n_tokens"] == 9
    assert s["terminated"] is True
    assert s["refusal_judge"]["phrases"] == list(DEFAULT_REFUSAL_PHRASES)


@pytest.mark.parametrize(
    "completion, parsed",
    [
        ("<answer>Z-Y-X</answer>", "Z-Y-X"),  # wrong path
        ("<answer>!!</answer>", "!!"),  # malformed
        ("I think the route is obvious.", None),  # no answer
        ("<answer>", None),  # unclosed tag
        ("", None),  # empty
    ],
)
def test_wrong_malformed_and_missing_answers(route_problem, completion, parsed):
    s = score_trace(route_problem, completion)
    assert s["correct"] is False
    assert s["parsed_answer"] == parsed


@pytest.mark.parametrize(
    "hostile",
    [
        "<answer>__import__('os').system('echo pwned')</answer>",
        "<answer>" + "A-" * 50_000 + "B</answer>",
        "\x00\x01<answer>\ud800</answer>",
        "<answer><answer></answer></answer>" * 100,
        "<answer>{{7*7}}</answer><script>alert(1)</script>",
    ],
)
def test_hostile_completions_are_scored_not_run(route_problem, hostile):
    s = score_trace(route_problem, hostile)
    assert s["correct"] is False
    assert "score_error" not in s


def test_truncated_completion_records_nontermination(route_problem):
    s = score_trace(
        route_problem, "Start at the first city and then I need to go", finish_reason="length"
    )
    assert s["terminated"] is False
    assert s["finish_reason"] == "length"
    assert s["correct"] is False


def test_refusal_is_scored_with_the_phrase_list(route_problem):
    judge = RefusalJudge(["not today"])
    s = score_trace(route_problem, "Not today.", judge=judge)
    assert s["refused"] is True
    assert s["refusal_phrase"] == "not today"
    assert s["refusal_judge"]["phrases"] == ["not today"]


def test_verifier_crash_scores_wrong_and_keeps_the_error():
    problem = _CrashingTask().generate(1, 0)[0]
    s = score_trace(problem, "<answer>1</answer>")
    assert s["correct"] is False
    assert s["score_error"] == "ValueError: cannot parse"


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown task 'no-such-task'"):
        score_trace({"id": "x", "task": "no-such-task", "prompt": "p"}, "text")


@pytest.mark.parametrize(
    "completion, correct",
    [
        ("2+1 = 3. So \\boxed{\\frac{1}{2}}", True),
        ("The answer is \\boxed{0.5}", True),
        ("The answer is \\boxed{3}", False),
        ("no boxed answer here", False),
        ("\\boxed{" * 50, False),
    ],
)
def test_math_completions_go_through_math_verify(completion, correct):
    problem = {"id": "m1", "task": "math", "prompt": "What is 1/2?", "answer": "1/2", "meta": {}}
    assert score_trace(problem, completion)["correct"] is correct


def test_countdown_completions_go_through_its_verifier():
    task = get_task("countdown")
    problem = task.generate(1, seed=0, split="eval")[0]
    good = score_trace(problem, f"<answer>{problem['answer']}</answer>")
    assert good["correct"] is True
    assert score_trace(problem, "<answer>1+1</answer>")["correct"] is False
    assert score_trace(problem, "I can't help with that.")["refused"] is True
