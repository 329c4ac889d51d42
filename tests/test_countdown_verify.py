"""The Countdown verifier: conventional semantics, exact arithmetic, hostile strings never run."""

from __future__ import annotations

import ast
import operator
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftlens.tasks import extract_answer, get_task, verify_countdown
from sftlens.tasks._countdown_verify import MAX_EXPR_CHARS, ExprError, evaluate


@pytest.mark.parametrize(
    "expr, numbers, target",
    [
        ("(7-3)*5+2", [3, 5, 7, 2], 22),
        ("7/2*2", [7, 2, 2], 7),  # exact rationals: 7/2 is 3.5, not 3
        ("6/(1-3/4)", [6, 1, 3, 4], 24),  # a fractional intermediate
        (" 2 + 3 * 4 ", [2, 3, 4], 14),  # precedence and spaces
        ("(3-5)*(1-12)", [3, 5, 1, 12], 22),  # negative intermediate via binary minus
        ("((((2+3))))*4", [2, 3, 4], 20),
        ("3+3", [3, 3], 6),  # a repeated number is used as often as it is given
    ],
)
def test_accepts_valid_answers(expr, numbers, target):
    res = verify_countdown(expr, numbers, target)
    assert res == {"correct": True, "value": str(target), "reason": "ok"}


@pytest.mark.parametrize(
    "expr, numbers, target, why",
    [
        ("(7-3)*5+2", [3, 5, 7, 2], 23, "value 22 is not 23"),
        ("7*3", [3, 5, 7], 21, "must be used once"),  # 5 unused
        ("7*3+3", [3, 7], 24, "must be used once"),  # 3 used twice
        ("8/(3-3)", [8, 3, 3], 1, "division by zero"),
        ("-3+5+0", [3, 5, 0], 2, "unary"),  # unary minus is rejected
        ("+3+5", [3, 5], 8, "unary"),
        ("2**3", [2, 3], 8, "exponent"),
        ("2^3", [2, 3], 1, "not allowed"),
        ("1e1", [1, 1], 10, "not allowed"),
        ("3.0+5", [3, 5], 8, "not allowed"),
        ("07+1", [7, 1], 8, "leading zero"),
        ("(3+5", [3, 5], 8, "unbalanced"),
        ("3+5)", [3, 5], 8, "unexpected"),
        ("3 5", [3, 5], 8, "unexpected"),
        ("3+", [3], 3, "ends early"),
        ("", [3], 3, "empty"),
        ("x+3", [3], 3, "not allowed"),
    ],
)
def test_rejects_wrong_or_malformed(expr, numbers, target, why):
    res = verify_countdown(expr, numbers, target)
    assert res["correct"] is False
    assert why in res["reason"]


def test_operator_set_is_enforced():
    assert verify_countdown("6/2+1", [6, 2, 1], 4)["correct"]
    res = verify_countdown("6/2+1", [6, 2, 1], 4, ops="+-*")
    assert not res["correct"] and "'/' is not allowed" in res["reason"]


HOSTILE = [
    "__import__('os').system('echo pwned')",
    "2**100",
    "1e9",
    "9" * 100_000,
    "(" * 10_000 + "1" + ")" * 10_000,
    "(" * 41 + "1+2" + ")" * 41,
    "٣+٥",  # Arabic-Indic digits: isdigit() is True, but they are not ASCII
    "３+５",  # full-width digits
    "1+2\x00",
    "lambda: 0",
    "[1,2][0]",
    "1_000+1",
    "0x10",
    "1 if 1 else 2",
    "\n",
    None,
    12,
]


@pytest.mark.parametrize("expr", HOSTILE)
def test_hostile_strings_are_wrong_and_never_crash(expr):
    res = verify_countdown(expr, [1, 2], 3)
    assert res["correct"] is False
    assert set(res) == {"correct", "value", "reason"}


def test_deep_nesting_within_bounds_still_parses():
    expr = "(" * 30 + "1+2" + ")" * 30
    assert verify_countdown(expr, [1, 2], 3)["correct"]
    with pytest.raises(ExprError, match="nested deeper"):
        evaluate("(" * 41 + "1" + ")" * 41)


def test_length_bound():
    ok = "+".join(["1"] * 100)  # 199 characters
    assert len(ok) <= MAX_EXPR_CHARS
    assert verify_countdown(ok, [1] * 100, 100)["correct"]
    res = verify_countdown(ok + "+1", [1] * 101, 101)
    assert not res["correct"] and "longer than" in res["reason"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>1+2</answer>", "1+2"),
        ("<answer>9</answer> then <answer> 1+2 </answer>", "1+2"),  # the LAST one
        ("<answer><answer>1+2</answer></answer>", "1+2</answer>"),  # nesting is not guessed
        ("<answer>1+2", None),
        ("1+2</answer>", None),
        ("no tags", None),
        ("", None),
        ("<ANSWER>1+2</ANSWER>", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_nested_answer_tags_score_wrong():
    task = get_task("countdown")
    problem = task.generate(1, seed=3)[0]
    good = problem["answer"]
    assert task.score(problem, f"<answer>{good}</answer>")["correct"]
    res = task.score(problem, f"<answer><answer>{good}</answer></answer>")
    assert res["correct"] is False and res["parsed_answer"] == f"{good}</answer>"
    res = task.score(problem, f"<answer>{good}</answer> wait <answer>1</answer>")
    assert res["correct"] is False and res["parsed_answer"] == "1"
    assert task.score(problem, "no answer")["reason"] == "no <answer>...</answer>"


# --- property tests -------------------------------------------------------------------------

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _reference(expr: str) -> Fraction:
    """An independent evaluator (Python's own parser, exact values) for generated expressions."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(node)

    return ev(ast.parse(expr, mode="eval"))


@st.composite
def expressions(draw, depth=0):
    """A random well-formed expression and the numbers it uses."""
    if depth >= 3 or draw(st.booleans()):
        n = draw(st.integers(1, 30))
        return str(n), [n]
    left, ln = draw(expressions(depth=depth + 1))
    right, rn = draw(expressions(depth=depth + 1))
    op = draw(st.sampled_from("+-*/"))
    if draw(st.booleans()):
        left = f"({left})"
    if draw(st.booleans()) or op in "-/":
        right = f"({right})"
    return f"{left}{op}{right}", ln + rn


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), st.randoms(use_true_random=False))
def test_verifier_agrees_with_exact_reference(pair, rnd):
    expr, numbers = pair
    try:
        want = _reference(expr)
    except ZeroDivisionError:
        assert verify_countdown(expr, numbers, 1)["reason"].endswith("division by zero")
        return
    shuffled = list(numbers)
    rnd.shuffle(shuffled)  # the order of the given numbers does not matter
    if want.denominator == 1:
        res = verify_countdown(expr, shuffled, int(want))
        assert res["correct"], (expr, res)
    res = verify_countdown(expr, shuffled, int(want) + 1 if want.denominator == 1 else 0)
    assert not res["correct"] and res["value"] == str(want)
    # Dropping a number, or adding one, is always wrong.
    assert not verify_countdown(expr, shuffled[1:], int(want))["correct"]
    assert not verify_countdown(expr, shuffled + [1], int(want))["correct"]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_scored_never_raised(text):
    res = verify_countdown(text, [1, 2, 3], 6)
    assert isinstance(res["correct"], bool)
    if res["correct"]:
        # Only digits, operators, parens and spaces can ever verify.
        assert set(text.strip()) <= set("0123456789+-*/() \t")
    assert extract_answer(text) is None or isinstance(extract_answer(text), str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+-*/() ", max_size=60))
def test_arithmetic_alphabet_matches_python_when_valid(text):
    """On strings of the arithmetic alphabet, whatever the verifier accepts, Python's parser
    evaluates to the same exact value (no unary operators, no '**')."""
    try:
        value, _, _ = evaluate(text)
    except ExprError:
        return
    assert _reference(text.strip()) == value


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20_000))
def test_deep_parentheses_of_any_depth_never_crash(depth):
    res = verify_countdown("(" * depth + "1+2" + ")" * depth, [1, 2], 3)
    assert res["correct"] is (depth <= 40)
