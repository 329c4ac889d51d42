"""tag-fit, tag-eval and --calibration on small labelled files built here (no reference data)."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from sftlens.core import ConfigError, DataError, read_jsonl
from sftlens.trace_tagger import RULESET_ID
from sftlens.trace_tagger._agreement import agreement
from sftlens.trace_tagger._calibration import DEFAULT_CALIBRATION, Calibration
from sftlens.trace_tagger._labelled import parse_maps, read_labelled
from sftlens.trace_tagger._rules import RULESETS
from sftlens.trace_tagger._ruleset import RULESET_PREFIX, rules_hash

PLAIN = [
    "We add {a} to the running total.",
    "The area is the product of the two sides.",
    "Now compute the next term of the sequence.",
    "So {a} plus {b} is {c}.",
    "Next, the remainder is divided by {b}.",
    "The pattern repeats every {a} steps.",
]
# Re-computations of an earlier result in words the rules do not know: the judge calls them
# checks, so only a fitted layer can learn them.
RERUN = "Going over it once more, {a} plus {b} gives {c}."
ABANDON = "Scrap that route, I will take the other branch."


def _trace(rng: random.Random) -> tuple[str, list[dict]]:
    chunks, parts, pos = [], [], 0
    for _ in range(24):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        kind = rng.random()
        if kind < 0.15:
            sent, tags = RERUN.format(a=a, b=b, c=a + b), ["self_checking"]
        elif kind < 0.25:
            sent, tags = ABANDON, ["Backtracking"]
        else:
            sent, tags = rng.choice(PLAIN).format(a=a, b=b, c=a + b), ["active_computation"]
        chunks.append({"start": pos, "end": pos + len(sent), "text": sent, "tags": tags})
        parts.append(sent)
        pos += len(sent) + 1
    return " ".join(parts), chunks


def write_labelled(path, n_problems: int = 8, seed: int = 0) -> None:
    """Two traces per problem, ids ``model/<correct|wrong>/problem_<k>`` as in the dev files."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for k in range(n_problems):
            for outcome in ("correct", "wrong"):
                text, chunks = _trace(rng)
                rec = {"id": f"m/{outcome}/problem_{k}", "text": text, "chunks": chunks}
                f.write(json.dumps(rec) + "\n")


MAPS = ("self_checking=verification", "Backtracking=backtracking")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit")
    labels = d / "labels.jsonl"
    write_labelled(labels)
    from sftlens.trace_tagger._fit import FitConfig, fit_calibration

    cal = fit_calibration([labels], parse_maps(MAPS), FitConfig(n_boot=50))
    cal.save(d / "cal.json")
    return labels, d / "cal.json", cal


def _row(cal, split, label, tagger):
    (row,) = [r for r in cal.model["figures"]
              if (r["split"], r["label"], r["tagger"]) == (split, label, tagger)]  # fmt: skip
    return row


def test_fit_learns_what_rules_miss_on_held_out_problems(fitted):
    _, _, cal = fitted
    files = cal.model["training_files"]
    assert files[0]["grouped_by"] == "the last '/' part of the id"
    assert files[0]["held_out_groups"] == [f"problem_{k}" for k in (4, 5, 6, 7)]
    for label in ("verification", "backtracking"):
        fit, rules = _row(cal, "held-out", label, "fitted"), _row(cal, "held-out", label, "rules")
        assert fit["f1"] >= 0.95 > rules["f1"], (label, fit["f1"], rules["f1"])
        lo, hi = fit["ci"]["f1"]
        assert lo <= fit["f1"] <= hi
        assert fit["count_corr"] > 0.9
    assert {p["sentences"] for p in cal.model["learning_curve"]} == {50, 100}


def test_calibration_file_is_small_safe_json_with_provenance(fitted):
    labels, path, cal = fitted
    model = json.loads(path.read_text(encoding="utf-8"))
    assert model["ruleset"] == RULESET_ID and model["id"] == cal.id
    assert model["label_map"] == {"Backtracking": "backtracking", "self_checking": "verification"}
    from sftlens.core import file_sha256

    assert model["training_files"][0]["sha256"] == file_sha256(labels)
    assert path.stat().st_size < 200_000
    assert Calibration.load(path).id == cal.id


def test_fit_is_deterministic(fitted, tmp_path):
    labels, path, _ = fitted
    from sftlens.trace_tagger._fit import FitConfig, fit_calibration

    again = fit_calibration([labels], parse_maps(MAPS), FitConfig(n_boot=50))
    again.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_tag_with_calibration_names_the_fit(fitted, tmp_path, run_cli):
    _, path, cal = fitted
    traces = tmp_path / "traces.jsonl"
    text = "So 3 plus 4 is 7. Going over it once more, 3 plus 4 gives 7. Wait, that's not right."
    traces.write_text(json.dumps({"id": "a", "completion": text}) + "\n", encoding="utf-8")
    rc, _, err = run_cli("tag", traces, "--calibration", path, "--out", tmp_path / "t.jsonl")
    assert rc == 0, err
    (rec,) = read_jsonl(tmp_path / "t.jsonl")
    assert rec["ruleset"] == f"{RULESET_ID}+fit:{cal.id}"
    fit_spans = [s for s in rec["spans"] if s["label"] == "verification"]
    assert [s["text"] for s in fit_spans] == ["Going over it once more, 3 plus 4 gives 7."]
    assert fit_spans[0]["rule"] == "fit" and rec["counts"]["verification"] == 1
    rc, out, _ = run_cli("tag", "--text", text)
    assert rc == 0 and f"ruleset: {RULESET_ID}\n" in out  # pure rules stay the default
    rc, _, err = run_cli("tag-table", tmp_path / "t.jsonl", "--traces", traces, "--calibration",
                         path, "--out", tmp_path / "t.parquet", "--n-boot", "10")  # fmt: skip
    assert rc == 0, err
    run_cli("tag", traces, "--out", tmp_path / "rules.jsonl")
    rc, _, err = run_cli("tag-table", tmp_path / "rules.jsonl", "--traces", traces,
                         "--calibration", path, "--out", tmp_path / "r.parquet")  # fmt: skip
    assert rc == 2 and "record 1 was tagged by" in err and not (tmp_path / "r.parquet").exists()


def test_calibration_fitted_on_other_rules_is_refused(fitted, tmp_path, run_cli):
    _, path, _ = fitted
    model = json.loads(path.read_text(encoding="utf-8"))
    model["ruleset"] = RULESET_PREFIX + "000000000000"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(model), encoding="utf-8")
    rc, _, err = run_cli("tag", "--text", "Wait.", "--calibration", other)
    assert rc == 2 and "fitted over rules" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    rc, _, err = run_cli("tag", "--text", "Wait.", "--calibration", tmp_path / "missing.json")
    assert rc == 2 and "missing.json" in err


def test_tag_eval_reports_agreement_and_confusion(fitted, run_cli):
    labels, path, _ = fitted
    rc, out, err = run_cli("tag-eval", labels, *[x for m in MAPS for x in ("--map", m)],
                           "--calibration", path, "--split", "held-out", "--n-boot", "50")  # fmt: skip
    assert rc == 0, err
    assert "8 traces" in out and "| fitted | verification |" in out and "| rules |" in out
    assert "false positives" in out
    rc, _, err = run_cli("tag-eval", labels, "--map", "nonsense=verification")
    assert rc == 2 and "none of the mapped tags" in err and "self_checking" in err
    rc, _, err = run_cli("tag-eval", labels, "--map", "self_checking")
    assert rc == 2 and "JUDGE_TAG=LABEL" in err


def test_tag_fit_cli_writes_the_file(tmp_path, run_cli):
    labels = tmp_path / "l.jsonl"
    write_labelled(labels, n_problems=4, seed=1)
    out = tmp_path / "my-tagger.json"
    rc, stdout, err = run_cli("tag-fit", labels, "--map", MAPS[0], "--out", out, "--n-boot", "20")
    assert rc == 0, err
    assert "held-out | verification | fitted" in stdout and "learning curve" in stdout
    assert json.loads(out.read_text(encoding="utf-8"))["labels"] == ["verification"]


def test_labelled_chunks_without_offsets_are_found_or_named(tmp_path):
    p = tmp_path / "l.jsonl"
    rec = {"id": "t", "text": "Step one.\n\nCheck:   it holds.",
           "chunks": [{"start": None, "end": None, "text": "Step one.", "tags": ["a"]},
                      {"start": None, "end": None, "text": "Check: it holds.", "tags": ["b"]}]}  # fmt: skip
    p.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    (tr,), _ = read_labelled(p)
    assert [tr.text[s:e] for s, e in tr.units] == ["Step one.", "Check:   it holds."]
    rec["chunks"][1]["text"] = "not in the trace"
    p.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1: chunk 1"):
        read_labelled(p)


def test_agreement_figures_by_hand():
    pred = [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0], [0, 1, 0, 0]]
    gold = [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
    tags = [[frozenset({"x"})] * 4] * 5
    m = agreement(pred, gold, tags, n_boot=0)
    # tp 5, fp 2, fn 2 -> P = R = F1 = 5/7; counts (2,1,0,3,1) vs (1,1,1,4,0).
    assert m["precision"] == pytest.approx(5 / 7) and m["f1"] == pytest.approx(5 / 7)
    assert m["count_ratio"] == pytest.approx(1.0)
    assert m["count_corr"] == pytest.approx(5 / 76**0.5)
    assert m["false_positive_tags"] == {"x": 2}


def test_rule_set_id_is_a_hash_of_the_rules():
    rules = RULESETS.get(RULESET_ID)
    assert RULESET_PREFIX + rules_hash(rules) == RULESET_ID
    first = rules[0]
    changed = dataclasses.replace(first, patterns=lambda: [*first.patterns(), "new phrase"])
    assert rules_hash((changed, *rules[1:])) != rules_hash(rules)
    reordered = dataclasses.replace(first, yields_to=(*first.yields_to, "hedging"))
    assert rules_hash((reordered, *rules[1:])) != rules_hash(rules)


def test_shipped_calibration_was_fitted_on_the_current_rules():
    cal = Calibration.load(DEFAULT_CALIBRATION)
    assert cal.ruleset == RULESET_ID, (
        "the rules changed since the shipped calibration was fitted: refit it with "
        "benchmarks/fit_default_calibration.py and update the figures in benchmarks/RESULTS.md"
    )
    assert set(cal.labels) == {"verification", "backtracking"}
    assert np.isfinite(cal.weights).all()


def test_experiment_spec_tag_names_a_calibration(fitted):
    from sftlens.experiments import build_stages, load_spec

    _, path, cal = fitted
    plain = load_spec("countdown_lab", scale="tiny")
    assert plain.analysis.tag.enabled and plain.analysis.tag.calibration is None
    spec = load_spec("countdown_lab", scale="tiny",
                     overrides=[f"analysis.tag.calibration={path}"])  # fmt: skip
    tag_stages = [s for s in build_stages(spec) if s.name.startswith("tag.")]
    assert tag_stages and all(s.params["calibration_id"] == cal.id for s in tag_stages)
    with pytest.raises(DataError, match="missing.json"):
        build_stages(
            load_spec("countdown_lab", overrides=["analysis.tag.calibration=missing.json"])
        )
    off = load_spec("countdown_lab", scale="tiny", overrides=["analysis.tag=false"])
    assert not any(s.name.startswith("tag.") for s in build_stages(off))


def test_heldout_phrasing_is_unseen_by_rule_tests_and_keeps_the_search():
    import re

    from sftlens.tasks import get_task
    from sftlens.tasks._countdown_trace import PHRASE_BANKS
    from sftlens.trace_tagger._rules import rule_examples

    examples = [x.lower() for r in RULESETS.get(RULESET_ID) for ex in rule_examples(r)
                for x in ex]  # fmt: skip
    for group in PHRASE_BANKS["heldout"].values():
        for phrase in group:
            # No rule example is this phrase, whatever numbers fill its placeholders.
            parts = re.split(r"\{\w+\}", phrase.lower())
            pat = re.compile(r"[\d ()+*/=-]+".join(re.escape(x) for x in parts))
            assert not [x for x in examples if pat.fullmatch(x)], phrase
    task = get_task("countdown")
    for p in task.generate(5, seed=3):
        a, b = task.render(p, "cot", 7), task.render(p, "cot", 7, phrasing="heldout")
        assert [(e["type"], e.get("expr")) for e in a["events"]] == [
            (e["type"], e.get("expr")) for e in b["events"]
        ]
        assert a["response"] != b["response"]
        for e in b["events"]:
            if e["type"] == "backtrack":
                assert b["response"][e["start"] : e["end"]].split(".")[0] not in a["response"]
    with pytest.raises(ConfigError, match="unknown phrasing"):
        task.render(p, "cot", 7, phrasing="nope")


def test_judge_backend_writes_tags_and_tag_eval_scores_them(fitted, tiny_model_dir, tmp_path,
                                                            run_cli):  # fmt: skip
    labels, _, _ = fitted
    sample = tmp_path / "sample.jsonl"
    recs = []
    for r in list(read_jsonl(labels))[8:10]:  # two held-out traces, up to their first check
        k = next(i for i, c in enumerate(r["chunks"]) if "self_checking" in c["tags"])
        chunks = r["chunks"][: k + 1]
        recs.append({**r, "text": r["text"][: chunks[-1]["end"]], "chunks": chunks})
    sample.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    out = tmp_path / "judge.jsonl"
    args = ("tag", sample, "--text-field", "text", "--judge", tiny_model_dir, "--out", out)
    rc, stdout, err = run_cli(*args)
    assert rc == 0, err
    judged = list(read_jsonl(out))
    assert [r["id"] for r in judged] == [r["id"] for r in recs]
    assert judged[0]["ruleset"] == f"judge:{tiny_model_dir.name}"
    for r, src in zip(judged, recs, strict=True):
        assert set(r["counts"]) >= {"verification", "backtracking"}
        assert sum(r["counts"].values()) == len(r["spans"])
        for sp in r["spans"]:
            assert src["text"][sp["start"] : sp["end"]] == sp["text"] and sp["rule"] == "judge"
    rc, _, err = run_cli("tag", sample, "--judge", tiny_model_dir, "--text", "Wait.")
    assert rc == 2 and "--judge needs IN.jsonl" in err
    rc, _, err = run_cli("tag", sample, "--limit", "1", "--out", tmp_path / "x.jsonl")
    assert rc == 2 and "--limit applies to --judge only" in err
    first = out.read_bytes()
    assert run_cli(*args)[0] == 0 and out.read_bytes() == first  # no sampling: deterministic
    rc, stdout, err = run_cli("tag-eval", sample, "--map", MAPS[0], "--tags", out,
                              "--n-boot", "0")  # fmt: skip
    assert rc == 0, err
    assert "| judge.jsonl | verification |" in stdout and "| rules | verification |" in stdout
    rc, _, err = run_cli("tag-eval", labels, "--map", MAPS[0], "--tags", out)
    assert rc == 2 and "no Tags record with id" in err
