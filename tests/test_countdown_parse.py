"""Reading traces back: arithmetic claims in free text, and whether a trace's own verifications
and backtracks were right."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftlens.tasks import countdown_behaviour_checks, get_task, parse_countdown_trace

PROBLEM = {
    "id": "countdown-hand",
    "task": "countdown",
    "meta": {"numbers": [3, 5, 7, 2], "target": 22, "ops": "+-*/"},
}


@pytest.mark.parametrize(
    "text, exprs, truths",
    [
        ("Try 7-3=4. Left: 4 5 2.", ["7-3=4"], [True]),
        ("then 4 * 5 = 20, and 20+2 = 23.", ["4*5=20", "20+2=23"], [True, False]),
        ("So (7-3)*5+2 = 22.", ["(7-3)*5+2=22"], [True]),
        ("Left: 4 5 2. 4*5=20", ["4*5=20"], [True]),  # the list before is not the expression
        ("((7-3)*5 = 20", ["(7-3)*5=20"], [True]),  # an unbalanced '(' is dropped
        ("4×6=24 and 8÷2 = 4", ["4*6=24", "8/2=4"], [True, True]),
        ("7/2*2=7", ["7/2*2=7"], [True]),  # exact
        ("3-5=-2", ["3-5=-2"], [True]),
        ("9/6=3/2", ["9/6=3/2"], [True]),
        ("x = 5, 3 = 3, 2.5*2 = 5.0, a=b", [], []),  # no operator, decimals, names
        ("4*5 = 10+10 = 20", ["10+10=20"], [True]),  # a right side that is an expression
        ("1/0=5", [], []),
    ],
)
def test_claims_in_free_text(text, exprs, truths):
    claims = parse_countdown_trace(text)
    assert [c["expr"] for c in claims] == exprs
    assert [c["true"] for c in claims] == truths
    for c in claims:
        # The offsets point at the claim as written.
        assert text[c["start"] : c["end"]].replace(" ", "").startswith(c["expr"].split("=")[0][:1])
        assert text[c["start"] : c["end"]].endswith(c["claimed"].split("/")[-1])


def test_claim_fields():
    (c,) = parse_countdown_trace("Check: (7-3)*5+2 = 23. Correct.")
    assert c["lhs_value"] == "22" and c["claimed"] == "23" and c["true"] is False
    assert c["numbers_used"] == [7, 3, 5, 2] and c["n_ops"] == 3
    assert "Check: (7-3)*5+2 = 23. Correct."[c["start"] : c["end"]] == "(7-3)*5+2 = 23"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parser_never_raises(text):
    for c in parse_countdown_trace(text):
        assert 0 <= c["start"] < c["end"] <= len(text)


def test_parser_on_hostile_text():
    assert parse_countdown_trace(None) == []
    assert parse_countdown_trace("(" * 50_000 + "1+1=2") == [
        {
            "start": 50_000,
            "end": 50_005,
            "expr": "1+1=2",
            "lhs": "1+1",
            "lhs_value": "2",
            "claimed": "2",
            "true": True,
            "numbers_used": [1, 1],
            "n_ops": 1,
        }
    ]
    assert len(parse_countdown_trace("1+1=2 " * 20_000)) > 1000


@pytest.fixture(scope="module")
def rendered():
    task = get_task("countdown")
    problems = task.generate(200, seed=21)
    return [(p, task.render(p, "cot", seed=0), task.render(p, "lowq", seed=0)) for p in problems]


def test_parser_recovers_every_step_of_generated_traces(rendered):
    for _, cot, lowq in rendered:
        for ex in (cot, lowq):
            claims = parse_countdown_trace(ex["response"])
            for ev in (e for e in ex["events"] if e["type"] == "step"):
                inside = [c for c in claims if ev["start"] <= c["start"] < ev["end"]]
                assert [c["expr"] for c in inside] == [ev["expr"]]
                assert inside[0]["true"] == ev.get("arith_ok", True)
            # Every claim in a cot trace is true.
            if ex["style"] == "cot":
                assert all(c["true"] for c in claims)


def _spans(example):
    labels = {"verify": "verification", "backtrack": "backtracking"}
    return [
        {"start": e["start"], "end": e["end"], "label": labels[e["type"]], "rule": "ground-truth"}
        for e in example["events"]
        if e["type"] in labels
    ]


def test_checks_on_ground_truth_traces_are_all_right(rendered):
    """Spans built from the ground-truth events: every verification is correct, every backtrack
    is resolvable, abandons the state the generator abandoned, and that state is a dead end."""
    n_back = 0
    for p, cot, _ in rendered:
        res = countdown_behaviour_checks(cot["response"], p, _spans(cot))
        assert res["verification_correct_rate"] == 1.0
        assert res["n_verifications_unresolved"] == 0
        assert res["n_backtracks_unresolved"] == 0
        truth = [e for e in cot["events"] if e["type"] == "backtrack"]
        assert [sorted(b["from_state"]) for b in res["backtracks"]] == [
            sorted(e["from_state"]) for e in truth
        ]
        if truth:
            assert res["backtrack_precision"] == 1.0
        n_back += len(truth)
    assert n_back > 200


def test_false_claims_in_lowq_are_caught(rendered):
    caught = 0
    for p, _, lowq in rendered:
        if lowq["meta"]["render"]["lowq_error"] != "false_claim":
            continue
        claims = parse_countdown_trace(lowq["response"])
        assert claims[-1]["true"] is False and claims[-1]["claimed"] == str(p["meta"]["target"])
        caught += 1
    assert caught > 5


def _span(text, phrase, label):
    start = text.index(phrase)
    return {"start": start, "end": start + len(phrase), "label": label, "rule": "hand"}


def test_backtracking_from_a_state_that_is_not_a_dead_end():
    text = (
        "Try 7-3=4. Left: 4 5 2.\n"
        "That doesn't work, let me go back.\n"  # 4*5+2 = 22 was still possible
        "Try 7*3=21. Left: 21 5 2.\n"
        "Try 21+5=26. Left: 26 2. 26+2=28, 26-2=24.\n"
        "Dead end, going back.\n"  # 26 and 2 cannot make 22: a true dead end
    )
    spans = [
        _span(text, "That doesn't work, let me go back.", "backtracking"),
        _span(text, "Dead end, going back.", "backtracking"),
    ]
    res = countdown_behaviour_checks(text, PROBLEM, spans)
    first, second = res["backtracks"]
    assert first["from_state"] == [4, 5, 2] and first["dead_end"] is False
    assert second["from_state"] == [26, 2] and second["dead_end"] is True
    assert res["backtrack_precision"] == 0.5 and res["n_backtracks_unresolved"] == 0


def test_implicit_switch_of_branch_and_unknown_states():
    text = (
        "Dead end.\n"  # nothing tried yet: unknown
        "Try 7+5=12. Left: 12 3 2.\n"
        "Try 3*2=6. Left: 6 12.\n"
        "Try 7-3=4.\n"  # a new branch from the start, without saying so
        "Try 4+2=6. Left: 6 5.\n"
        "Going back.\n"  # abandons 6 5 (a dead end for 22)
        "Try 9*9=81.\n"  # operands in no state
        "Hmm, going back.\n"  # unknown
    )
    spans = [
        _span(text, p, "backtracking") for p in ("Dead end.", "Going back.", "Hmm, going back.")
    ]
    res = countdown_behaviour_checks(text, PROBLEM, spans)
    states = [b["from_state"] for b in res["backtracks"]]
    assert states == [None, [6, 5], None]
    assert [b["status"] for b in res["backtracks"]] == ["unknown", "resolved", "unknown"]
    assert res["backtrack_precision"] == 1.0 and res["n_backtracks_unresolved"] == 2


def test_verification_of_a_false_equation():
    text = (
        "Try 7*3=21. Left: 21 5 2.\n"
        "Check: 21+5-2 = 22. Correct.\n"  # false: 21+5-2 is 24
        "Let me check: (7-3)*5+2 = 22. Yes, that matches the target.\n"  # true
        "Check: 7*5-3*2 = 29, not 22.\n"  # true and rightly negative
        "So 3*7+2 = 23, that is not the target.\n"  # 3*7+2 is 23 indeed: correct
        "Hence 4*5+2 = 22, no good.\n"  # value 22 IS the target, yet it says no
        "Verify it works.\n"  # no arithmetic anywhere on the line: unresolved
        "9+2=11, 9-2=7, 9*2=18. None is 22.\n"  # one verdict for three candidates: right
        "9+2=11, not 22. 20+2=22, that is the target!\n"  # a miss, then a hit: right
        "4*5=20. Yes!\n"  # says yes, but 20 is not 22
    )
    phrases = [
        "Check: 21+5-2 = 22. Correct.",
        "Let me check: (7-3)*5+2 = 22. Yes, that matches the target.",
        "not 22",  # the span holds no claim: the nearest claim on its line is used
        "that is not the target",
        "no good",
        "Verify it works.",
        "9+2=11, 9-2=7, 9*2=18. None is 22.",
        "9+2=11, not 22. 20+2=22, that is the target!",
        "4*5=20. Yes!",
    ]
    spans = [_span(text, p, "verification") for p in phrases]
    spans.append(_span(text, "Try 7*3=21.", "step"))  # other labels are ignored
    res = countdown_behaviour_checks(text, PROBLEM, spans)
    v = res["verifications"]
    assert [x["correct"] for x in v] == [False, True, True, True, False, None, True, True, False]
    assert v[0]["reason"] == "false arithmetic"
    assert v[4]["reason"] == "says it misses the target but it hits it"
    assert v[5]["status"] == "unresolved"
    assert [c["verdict"] for c in v[6]["claims"]] == ["miss", "miss", "miss"]
    assert [c["verdict"] for c in v[7]["claims"]] == ["miss", "match"]
    assert v[8]["reason"] == "says it matches the target but does not"
    assert res["verification_correct_rate"] == pytest.approx(5 / 8)
    assert res["n_verifications"] == 9 and res["n_verifications_unresolved"] == 1


def test_no_spans_gives_no_rates():
    res = countdown_behaviour_checks("no reasoning at all", PROBLEM, [])
    assert res["verification_correct_rate"] is None and res["backtrack_precision"] is None
