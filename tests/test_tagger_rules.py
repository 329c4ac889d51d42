"""Every rule's docstring examples are its tests: must-match phrases fire it, must-not don't."""

from __future__ import annotations

import pytest

from sftlens.trace_tagger import LABELS, RULESET_ID, Tagger
from sftlens.trace_tagger._rules import RULESETS, Rule, rule_examples

RULES: tuple[Rule, ...] = RULESETS.get(RULESET_ID)


def _cases(kind: int):
    for r in RULES:
        for phrase in rule_examples(r)[kind]:
            yield pytest.param(r, phrase, id=f"{r.key}: {phrase}")


@pytest.fixture(scope="module")
def tagger():
    return Tagger()


def _fired(tagger, phrase):
    return {(sp["label"], sp["rule"]) for sp in tagger.tag(phrase)["spans"]}


@pytest.mark.parametrize(("rule", "phrase"), list(_cases(0)))
def test_rule_matches_its_examples(tagger, rule, phrase):
    assert (rule.label, rule.name) in _fired(tagger, phrase)


@pytest.mark.parametrize(("rule", "phrase"), list(_cases(1)))
def test_rule_rejects_its_counterexamples(tagger, rule, phrase):
    assert (rule.label, rule.name) not in _fired(tagger, phrase)


def test_every_rule_documents_examples_both_ways():
    assert {r.label for r in RULES} == set(LABELS)
    for r in RULES:
        must, must_not = rule_examples(r)
        assert must and must_not, f"{r.key} needs Must match and Must not match examples"


def test_rule_keys_are_unique():
    keys = [r.key for r in RULES]
    assert len(keys) == len(set(keys))


def test_matchers_are_validated():
    """A misspelled token attribute must fail at build time, not match every token."""
    from sftlens.trace_tagger._matching import AnchoredMatcher

    tagger = Tagger()
    matcher = AnchoredMatcher(tagger.nlp.vocab, {})
    with pytest.raises(ValueError):
        matcher.add("bad", [[{"LOWR": "wait"}]])


def test_unknown_ruleset_lists_known_ids():
    from sftlens.core import ConfigError

    with pytest.raises(ConfigError, match=RULESET_ID):
        Tagger("no-such-rules")


def test_hedging_yields_to_backtracking(tagger):
    spans = tagger.tag("Hmm, wait, that's not right.")["spans"]
    assert {sp["label"] for sp in spans} == {"backtracking"}
    assert tagger.tag("Hmm, the constraint is odd.")["counts"]["hedging"] == 1


def test_wait_before_a_check_is_verification_not_backtracking(tagger):
    counts = tagger.tag("Wait, let me double-check that 4 * 6 = 24.")["counts"]
    assert counts["verification"] == 1 and counts["backtracking"] == 0


def test_curly_apostrophes_match_like_straight_ones(tagger):
    straight = tagger.tag("That's not right.")["counts"]
    curly = tagger.tag("That\u2019s not right.")["counts"]
    assert straight == curly and curly["backtracking"] == 1


def test_corrective_stop_before_a_check_is_backtracking(tagger):
    """A check announced after "But wait" re-opens a step: verification yields to the rule."""
    counts = tagger.tag("But wait, let me double-check the sum.")["counts"]
    assert counts["backtracking"] == 1 and counts["verification"] == 0


def test_check_episode_labels_whole_sentences_between_opening_and_verdict(tagger):
    text = "Let me double-check that. 6 * 4 = 24. Yes, that's correct."
    spans = [sp for sp in tagger.tag(text)["spans"] if sp["rule"] == "check_episode"]
    assert [text[sp["start"] : sp["end"]] for sp in spans] == ["6 * 4 = 24."]
    assert tagger.tag(text)["counts"]["verification"] == 3


def test_yields_to_rejects_unknown_targets():
    from sftlens.trace_tagger._rules import rule

    with pytest.raises(ValueError, match="known labels"):
        rule("backtracking", yields_to=("verifcation.check_intent",))


def test_docs_show_every_rule_with_its_examples():
    """docs/tagger.md's example table of each rule is the rule's docstring examples, row for row."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "tagger.md").read_text("utf-8")
    for r in RULES:
        head = f"**`{r.name}`**"
        assert head in docs, f"docs/tagger.md has no section {head} for rule {r.key}"
        start = docs.index("| must match | must not match |", docs.index(head))
        rows = docs[start:].split("\n\n", 1)[0].splitlines()[2:]
        cells = [[c.strip() for c in row.strip().strip("|").split(" | ")] for row in rows]
        must, must_not = rule_examples(r)
        assert [c[0] for c in cells if c[0]] == must, f"{r.key}: must-match table out of date"
        assert [c[1] for c in cells if len(c) > 1 and c[1]] == must_not, (
            f"{r.key}: must-not-match table out of date"
        )


def test_pattern_words_are_single_tokens(tagger):
    """A word the tokenizer splits ("re-check" -> "re", "-", "check") can never match one token."""
    from sftlens.trace_tagger._matching import _TEXT_ATTRS, _values

    dead = []
    for r in RULES:
        for pat in r.patterns():
            for tok in pat if not isinstance(pat, str) else []:
                for attr in _TEXT_ATTRS:
                    for v in _values(tok.get(attr)) or [] if attr in tok else []:
                        # A contraction ("'m", "'re") is one token after the word it joins.
                        hosts = ("I", "they", "it") if v[0] in "'’" else ("",)
                        if all(len(tagger.nlp.make_doc(h + v)) != 1 + bool(h) for h in hosts):
                            dead.append(f"{r.key}: {attr} {v!r}")
    assert not dead, "pattern words the tokenizer splits: " + "; ".join(dead)
