"""Math scoring with math-verify on hand-made completions, and math problem files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sftlens.core import ConfigError, DataError
from sftlens.tasks import get_task, load_math_problems, score_math
from sftlens.tasks._math import last_boxed


@pytest.mark.parametrize(
    ("completion", "answer", "correct", "reason"),
    [
        (r"So the answer is \boxed{\frac{1}{2}}.", "0.5", True, "ok"),
        (r"\boxed{0.5}", r"\frac{1}{2}", True, "ok"),
        (r"\boxed{x^2+2x}", "x(x+2)", True, "ok"),
        (r"First \boxed{3}, no wait: \boxed{4}", "4", True, "ok"),
        (r"\boxed{\sqrt{2}}", r"The answer is $\boxed{\sqrt 2}$.", True, "ok"),
        (r"\boxed{3}", "0.5", False, "wrong"),
        (r"\boxed{4}, no wait: \boxed{3}", "4", False, "wrong"),
        ("The answer is 0.5", "0.5", False, "no_boxed"),
        (r"\boxed{" + "1+" * 600 + "1}", "2", False, "too_long"),
        (r"\boxed{__import__('os')}", "2", False, "wrong"),
    ],
)
def test_score_math(completion, answer, correct, reason):
    got = score_math(completion, answer)
    assert got["correct"] is correct and got["reason"] == reason


def test_last_boxed_nested_and_unclosed():
    assert last_boxed(r"\boxed{\frac{1}{\sqrt{2}}} end") == r"\frac{1}{\sqrt{2}}"
    assert last_boxed(r"\boxed{1} \fbox{2}") == "2"
    assert last_boxed(r"\boxed{1") is None


def test_load_math_problems_and_task(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text(
        json.dumps({"problem": "1/2 as a decimal?", "answer": "0.5", "level": 1}) + "\n"
        + json.dumps({"question": "2+2?", "solution": r"It is \boxed{4}.", "id": "q2"}) + "\n",
        "utf-8",
    )  # fmt: skip
    recs = load_math_problems(f)
    assert [(r["id"], r["prompt"], r["answer"]) for r in recs] == [
        ("math-000000", "1/2 as a decimal?", "0.5"),
        ("q2", "2+2?", "4"),
    ]
    assert recs[0]["meta"] == {"level": 1} and recs[0]["task"] == "math"
    task = get_task("math")
    assert task.score(recs[0], r"\boxed{\frac12}")["correct"]
    assert not task.score(recs[1], r"\boxed{5}")["correct"]
    with pytest.raises(ConfigError, match="pass a problem file"):
        task.generate(5, seed=0)
    pq = tmp_path / "m.parquet"
    pd.DataFrame({"problem": ["p"], "answer": ["1"]}).to_parquet(pq, index=False)
    assert load_math_problems(pq)[0]["answer"] == "1"


def test_load_math_problems_errors(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"problem": "a", "answer": "1"}\n{"prompt": "b"}\n', "utf-8")
    with pytest.raises(DataError, match=r"m\.jsonl:2: no answer field \(looked for answer"):
        load_math_problems(f)
    g = tmp_path / "s.jsonl"
    g.write_text('{"problem": "a", "solution": "no box"}\n', "utf-8")
    with pytest.raises(DataError, match="no \\\\boxed"):
        load_math_problems(g)
