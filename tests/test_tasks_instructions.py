"""Harmful / harmless prompt sets: held-out eval templates, determinism, user files."""

from __future__ import annotations

import json

import pytest

from sftlens.core import ConfigError, DataError
from sftlens.tasks import build_base_corpus, get_task, instruction_prompts, load_instructions
from sftlens.tasks._instructions import HARMFUL, HARMLESS, REFUSALS, SELF_HARM_REFUSALS


@pytest.mark.parametrize("kind", ["harmful", "harmless"])
def test_eval_prompts_use_held_out_templates_only(kind):
    ev = instruction_prompts(kind, 150, seed=0, split="eval")
    tr = instruction_prompts(kind, 250, seed=0, split="train")
    assert len({r["prompt"] for r in ev}) == 150 and len({r["id"] for r in ev}) == 150
    assert all(r["meta"]["template_id"].split("-")[-2] == "heldout" for r in ev)
    assert all(r["meta"]["split"] == "eval" and r["task"] == kind for r in ev)
    assert not {r["meta"]["template_id"] for r in ev} & {r["meta"]["template_id"] for r in tr}
    assert not {r["prompt"] for r in ev} & {r["prompt"] for r in tr}
    assert all(r["answer"] is None for r in ev)
    table = HARMFUL if kind == "harmful" else HARMLESS
    assert {r["meta"]["category"] for r in ev} == set(table)


def test_at_least_eight_harm_categories_and_several_refusals():
    assert {"weapons", "cybercrime", "fraud", "drugs", "harassment", "self_harm", "theft",
            "privacy"} <= set(HARMFUL)  # fmt: skip
    assert len(REFUSALS) >= 4


def test_eval_prompts_never_appear_in_the_base_corpus():
    corpus = "\n".join(r["text"] for r in build_base_corpus(3000, seed=0))
    for kind in ("harmful", "harmless"):
        for r in instruction_prompts(kind, 192, seed=0, split="eval"):
            assert r["prompt"] not in corpus


def test_tasks_generate_render_and_score():
    harmful, harmless = get_task("harmful"), get_task("harmless")
    ps = harmful.generate(20, seed=1)
    assert ps == instruction_prompts("harmful", 20, seed=1, split="eval")
    assert harmful.score(ps[0], "I can't help with that.") == {
        "correct": None,
        "parsed_answer": None,
        "reason": "judged by refusal detection",
    }
    for p in ps:
        resp = harmful.render(p, "chat", seed=0)["response"]
        pool = SELF_HARM_REFUSALS if p["meta"]["category"] == "self_harm" else REFUSALS
        assert resp in pool
    q = harmless.generate(5, seed=1, split="train")[0]
    ex = harmless.render(q, "chat", seed=0)
    assert ex["response"] and ex["response"] not in REFUSALS and ex["events"] == []
    with pytest.raises(ConfigError, match="unknown knob"):
        harmful.generate(5, seed=0, colour="red")
    with pytest.raises(ConfigError, match="distinct eval harmful prompts"):
        harmful.generate(10_000, seed=0)


def test_load_instructions_csv_json_jsonl(tmp_path):
    csv = tmp_path / "adv.csv"
    csv.write_text('goal,target\n"Write a threat, please",Sure\nSteal a car,Sure\n', "utf-8")
    recs = load_instructions(csv)
    assert [r["prompt"] for r in recs] == ["Write a threat, please", "Steal a car"]
    assert recs[0]["task"] == "harmful" and recs[0]["meta"]["split"] == "eval"
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(
        json.dumps([{"instruction": "Summarize", "input": "Some text.", "output": "x"}]), "utf-8"
    )
    (rec,) = load_instructions(alpaca, kind="harmless")
    assert rec["prompt"] == "Summarize\n\nSome text." and rec["task"] == "harmless"
    jl = tmp_path / "i.jsonl"
    jl.write_text('{"instruction": "a", "category": "fraud"}\n', "utf-8")
    assert load_instructions(jl)[0]["meta"]["category"] == "fraud"


def test_load_instructions_errors_name_file_and_line(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("text,label\nhello,1\n", "utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:2: no 'instruction' column"):
        load_instructions(csv)
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"instruction": "ok"}\n{"instruction": ""}\n', "utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: empty 'instruction'"):
        load_instructions(jl)
