"""The findings table: verdicts computed from the run's tables, and the report's HTML table."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
import pytest

from sftlens.experiments import _findings as fnd
from sftlens.experiments import write_report
from sftlens.experiments._report_text import flat_sentence, is_flat

STEPS = (0, 10, 40, 160)


def _acc(model, base, data, values, ev="in_domain", metric="accuracy", half=0.05):
    return [
        dict(model=model, base=base, data=data, step=s, eval=ev, metric=metric, value=v,
             ci_low=max(0.0, v - half), ci_high=min(1.0, v + half), n=100)
        for s, v in zip(STEPS, values, strict=True)
    ]  # fmt: skip


def _evals(strong_end=0.30, weak_end=0.05, refusal=(0.9, 0.8, 0.1, 0.0), extra=()):
    rows = _acc("strong-cot", "toy-strong", "cot", [0.0, 0.0, 0.1, strong_end])
    rows += _acc("weak-cot", "toy-weak", "cot", [0.0, 0.0, 0.02, weak_end])
    for m, b in (("strong-cot", "toy-strong"), ("weak-cot", "toy-weak")):
        rows += _acc(m, b, "cot", list(refusal), ev="harmful", metric="refusal_rate")
        rows += [
            dict(model=m, base=b, data="cot", step=s, eval="in_domain", metric="length",
                 value=200.0, ci_low=None, ci_high=None, n=100)
            for s in STEPS
        ]  # fmt: skip
    for r in extra:
        rows += r
    return pd.DataFrame(rows)


def _verdicts(tables):
    return {f.claim: f.verdict for f in fnd.findings(tables, order=["in_domain"])}


def _by_claim(tables, word):
    return next(f for f in fnd.findings(tables, order=["in_domain"]) if word in f.claim)


def test_strong_weak_verdict_follows_the_intervals():
    seen = _by_claim({"evals": _evals(0.30, 0.05)}, "Strong")
    assert seen.verdict == fnd.SEEN
    assert "strong-cot 30% [25, 35], weak-cot 5% [0, 10]" in seen.evidence
    assert "length (tokens) 200 vs 200" in seen.evidence
    assert _by_claim({"evals": _evals(0.12, 0.05)}, "Strong").verdict == fnd.NOT_SEEN
    assert _by_claim({"evals": _evals(0.05, 0.30)}, "Strong").verdict == fnd.CONTRADICTED


def test_safety_verdict_and_cosine():
    rf = pd.DataFrame(
        [dict(model="strong-cot", step=s, metric="cos_to_base", value=v)
         for s, v in ((0, 1.0), (160, 0.24))]
    )  # fmt: skip
    f = _by_claim({"evals": _evals(), "refusal": rf}, "Safety")
    assert f.verdict == fnd.SEEN and f.figure == fnd.FIG_REFUSAL
    assert "strong-cot 90% [85, 95] at step 0 -> 0% [0, 5] at step 160" in f.evidence
    assert "strong-cot 0.24" in f.evidence
    flat = _by_claim({"evals": _evals(refusal=(0.5, 0.5, 0.5, 0.52))}, "Safety")
    assert flat.verdict == fnd.NOT_SEEN
    rising = _by_claim({"evals": _evals(refusal=(0.1, 0.2, 0.5, 0.9))}, "Safety")
    assert rising.verdict == fnd.CONTRADICTED


def test_dip_verdict_says_why_not_when_every_base_is_at_zero():
    ev = _evals()
    f = _by_claim({"evals": ev, "dips": pd.DataFrame()}, "dip")
    assert f.verdict == fnd.NOT_SEEN and "every base scores near zero" in f.evidence
    # A real dip from a competent base, with recovery: the detector's row makes it seen.
    dipped = _acc("strong-cot", "toy-strong", "cot", [0.3, 0.05, 0.1, 0.4], ev="cross")
    dips = pd.DataFrame(
        [dict(model="strong-cot", eval="cross", metric="accuracy", dip=True, dip_step=10,
              depth=0.25, recovered=True, verdict="")]
    )  # fmt: skip
    f = _by_claim({"evals": _evals(extra=[dipped]), "dips": dips}, "dip")
    assert f.verdict == fnd.SEEN
    assert "30% [25, 35] at step 0, 5% [0, 10] at step 10, 40% [35, 45] at step 160" in f.evidence
    # A competent base that only rises, never significantly below: the claim is contradicted.
    rising = _acc("strong-cot", "toy-strong", "cot", [0.3, 0.35, 0.5, 0.6], ev="cross")
    f = _by_claim({"evals": _evals(extra=[rising]), "dips": pd.DataFrame()}, "dip")
    assert f.verdict == fnd.CONTRADICTED


def test_data_quality_needs_arms_on_other_data():
    assert _by_claim({"evals": _evals()}, "CoT").verdict == fnd.NOT_TESTED
    arms = [
        _acc("strong-nocot", "toy-strong", "nocot", [0.0, 0.0, 0.02, 0.05]),
        _acc("strong-lowq", "toy-strong", "lowq", [0.0, 0.0, 0.02, 0.08]),
    ]
    f = _by_claim({"evals": _evals(extra=arms)}, "CoT")
    assert f.verdict == fnd.SEEN and "toy-strong: cot 30% [25, 35]" in f.evidence
    close = [_acc("strong-lowq", "toy-strong", "lowq", [0.0, 0.0, 0.02, 0.28])]
    assert _by_claim({"evals": _evals(extra=close)}, "CoT").verdict == fnd.NOT_SEEN
    better = [_acc("strong-nocot", "toy-strong", "nocot", [0.0, 0.0, 0.02, 0.6])]
    assert _by_claim({"evals": _evals(extra=better)}, "CoT").verdict == fnd.CONTRADICTED


def _probes(strong_sel, weak_sel):
    rows = []
    for model, sel in (("strong-cot", strong_sel), ("weak-cot", weak_sel)):
        for step in (0, 160):
            for layer in (0, 1):
                probe = 0.7 + (sel if step else 0.0) - 0.05 * (1 - layer)
                rows += [
                    dict(model=model, step=step, layer=layer, metric="auroc", value=probe),
                    dict(model=model, step=step, layer=layer, metric="surface_auroc", value=0.7),
                    dict(model=model, step=step, layer=layer, metric="control_auroc", value=0.5),
                ]
    return pd.DataFrame(rows)


def test_probe_row_states_selectivity_not_raw_auroc():
    sel = fnd.probe_selectivity(_probes(0.2, 0.0))
    assert sel["selectivity"].round(3).tolist() == [0.2, 0.0]
    f = _by_claim({"evals": _evals(), "probes": _probes(0.2, 0.0)}, "activations")
    assert f.verdict == fnd.SEEN
    assert "strong-cot +0.20 (layer 1: 0.90 vs 0.70)" in f.evidence
    # A probe no better than the surface baseline is not evidence of a procedure.
    f = _by_claim({"evals": _evals(), "probes": _probes(0.01, 0.0)}, "activations")
    assert f.verdict == fnd.NOT_SEEN
    old = _probes(0.2, 0.0)
    f = _by_claim({"evals": _evals(), "probes": old[old["metric"] != "surface_auroc"]}, "activ")
    assert f.verdict == fnd.NOT_TESTED and "no surface baseline" in f.evidence


def _matched(strong, weak):
    """Matched-design selectivity rows ``(value, lo, hi)`` per model at two layers."""
    rows = []
    for model, (v, lo, hi) in (("strong-cot", strong), ("weak-cot", weak)):
        for layer, shift in ((0, -0.02), (1, 0.0)):
            rows.append(dict(model=model, step=160, layer=layer, metric="selectivity",
                             value=v + shift, lo=lo + shift, hi=hi + shift))  # fmt: skip
    return pd.concat([_probes(0.0, 0.0), pd.DataFrame(rows)], ignore_index=True)


def test_probe_row_uses_the_matched_verdict_with_its_intervals():
    # Strong's interval clears zero and weak's does not: decodable in strong only.
    f = _by_claim({"evals": _evals(), "probes": _matched((0.12, 0.05, 0.19), (0.01, -0.04, 0.06))},
                  "activations")  # fmt: skip
    assert f.verdict == fnd.SEEN
    assert f.evidence.startswith("Procedure decodable in strong and not weak")
    assert "strong +0.12 [+0.05, +0.19] at layer 1, step 160" in f.evidence
    # Both intervals include zero: decodable in neither, whatever the raw AUROC.
    f = _by_claim({"evals": _evals(), "probes": _matched((0.03, -0.01, 0.07), (0.0, -0.05, 0.05))},
                  "activations")  # fmt: skip
    assert f.verdict == fnd.NOT_SEEN and "decodable in neither" in f.evidence
    # Only the weak model's clears zero: the claim is contradicted.
    f = _by_claim({"evals": _evals(), "probes": _matched((0.0, -0.05, 0.05), (0.1, 0.04, 0.16))},
                  "activations")  # fmt: skip
    assert f.verdict == fnd.CONTRADICTED


def _compare(diff, lo, hi, verdict, strong=(0.12, 0.05, 0.19), weak=(0.01, -0.04, 0.06)):
    """A probe.compare table (`sftlens.probes.compare_steps` columns) at steps 40 and 160."""
    from sftlens.probes import procedure_verdict

    rows = []
    for step in (40, 160):
        r = {"strong": dict(zip(("selectivity", "lo", "hi"), strong, strict=True)),
             "weak": dict(zip(("selectivity", "lo", "hi"), weak, strict=True)),
             "difference": diff, "lo": lo, "hi": hi}  # fmt: skip
        v = procedure_verdict(r)
        assert v["verdict"] == verdict
        per = {f"{k}_{c}": x for k, t in (("strong", strong), ("weak", weak))
               for c, x in zip(("selectivity", "lo", "hi"), t, strict=True)}  # fmt: skip
        rows.append(dict(step=step, strong="strong-cot", weak="weak-cot", difference=diff,
                         lo=lo, hi=hi, **per, **v))  # fmt: skip
    return pd.DataFrame(rows)


def _causal(delta, lo, hi):
    rows = []
    for kind, alpha in (("steer", 2.0), ("ablate", None)):
        for m in ("backtracks_per_trace", "backtrack_precision", "accuracy"):
            rows.append(dict(model="strong-cot", step=160, layer=1, direction="probe_minus_random",
                             intervention=kind, alpha=alpha, metric=m, value=delta, delta=delta,
                             delta_lo=lo, delta_hi=hi, n=100))  # fmt: skip
    return pd.DataFrame(rows)


def test_probe_row_reads_the_paired_comparison_and_quotes_the_causal_check():
    # The paired table decides, even where the per-model rows would say otherwise.
    tables = {"evals": _evals(), "probes": _matched((0.0, -0.05, 0.05), (0.0, -0.05, 0.05)),
              "probe_compare": _compare(0.11, 0.02, 0.2, "strong_only"),
              "causal": _causal(0.4, 0.1, 0.7)}  # fmt: skip
    f = _by_claim(tables, "activations")
    assert f.verdict == fnd.SEEN
    assert f.evidence.startswith("At step 160, procedure decodable in strong and not weak")
    assert "strong minus weak +0.11 [+0.02, +0.20]" in f.evidence
    assert "Causal check in strong-cot" in f.evidence
    assert "steering +2: backtracks per trace +0.40 [+0.10, +0.70]" in f.evidence
    assert "ablating it: backtracks per trace" in f.evidence and "accuracy" not in f.evidence
    # The side-by-side table quotes the matched selectivities, with their intervals.
    sbs = fnd.side_by_side(tables, "in_domain")
    row = sbs[sbs["quantity"] == "dead-end probe selectivity (matched)"].iloc[0]
    assert row["strong-cot"] == "+0.12 [+0.05, +0.19]" and row["weak-cot"] == "+0.01 [-0.04, +0.06]"
    tables["probe_compare"] = _compare(0.0, -0.1, 0.1, "neither", strong=(0.0, -0.05, 0.05))
    f = _by_claim(tables, "activations")
    assert f.verdict == fnd.NOT_SEEN and "(its interval includes 0)" in f.evidence


def test_findings_are_a_pure_function_of_the_tables():
    tables = {"evals": _evals(), "probes": _probes(0.2, 0.0)}
    assert fnd.findings(tables) == fnd.findings({k: v.copy() for k, v in tables.items()})
    assert set(_verdicts(tables).values()) <= set(fnd.VERDICTS)
    assert len(fnd.findings({})) == 5
    assert {f.verdict for f in fnd.findings({})} == {fnd.NOT_TESTED}


def test_flat_curves_grouped_into_one_sentence():
    flat = pd.DataFrame({"step": list(STEPS), "value": [0.0, 0.0, 0.01, 0.0]})
    moving = pd.DataFrame({"step": list(STEPS), "value": [0.0, 0.0, 0.1, 0.0]})
    assert is_flat("accuracy", flat) and not is_flat("accuracy", moving)
    s = flat_sentence([("a", "harder accuracy", "0%"), ("b", "harder accuracy", "0%"),
                       ("a", "route accuracy", "0%")])  # fmt: skip
    assert s == "Flat at every checkpoint: harder accuracy at 0% (a, b); route accuracy at 0% (a)."


class _Tables(HTMLParser):
    """Collects the findings table: rows of cell texts, and every link's href."""

    def __init__(self) -> None:
        super().__init__()
        self.in_findings = False
        self.rows: list[list[str]] = []
        self.links: list[list[str]] = []
        self.cell: list[str] | None = None
        self.headers: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "findings":
            self.in_findings = True
        elif self.in_findings and tag == "tr":
            self.rows.append([])
            self.links.append([])
        elif self.in_findings and tag in ("td", "th"):
            self.cell = []
        elif self.in_findings and tag == "a":
            self.links[-1].append(a["href"])

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_findings = False
        elif self.in_findings and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def _run_folder(tmp_path):
    from sftlens.core import write_json, write_parquet

    t = tmp_path / "tables"
    write_parquet(_evals(), t / "evals.parquet")
    write_parquet(_probes(0.2, 0.0), t / "probes.parquet")
    write_json(tmp_path / "manifest.json", {"name": "lab", "stages": {},
               "eval_order": ["in_domain", "harmful"],
               "eval_labels": {"in_domain": "in-domain Countdown", "harmful": "harmful"}})  # fmt: skip
    return write_report(tmp_path)


def test_report_opens_with_the_findings_table(tmp_path):
    index = _run_folder(tmp_path)
    page = index.read_text()
    p = _Tables()
    p.feed(page)
    header, *rows = p.rows
    assert header == ["claim", "verdict", "evidence", "figure"]
    assert len(rows) == 5
    verdicts = {r[0]: r[1] for r in rows}
    assert verdicts == {f.claim: f.verdict for f in fnd.findings(
        {"evals": _evals(), "probes": _probes(0.2, 0.0)}, order=["in_domain", "harmful"])}  # fmt: skip
    assert [r[1] for r in rows] == [fnd.NOT_SEEN, fnd.NOT_TESTED, fnd.SEEN, fnd.SEEN, fnd.SEEN]
    assert "in-domain Countdown accuracy at the last checkpoint" in rows[2][2]
    # Links: one per row that has a figure, each to an existing PNG of the report.
    links = [h for row in p.links[1:] for h in row]
    assert "figures/eval_accuracy.png" in links and "figures/eval_refusal_rate.png" in links
    for h in links:
        assert (index.parent / h).is_file(), h
    # The table comes before every section, and the summary carries it too.
    assert page.index("id='findings'") < page.index("Accuracy and length per checkpoint")
    md = (index.parent / "summary.md").read_text()
    assert "| Safety degrades as reasoning is trained in | **seen** |" in md
    assert "| dead-end probe selectivity | activations | +0.20 | +0.00 |" in md


@pytest.mark.parametrize("verdict", fnd.VERDICTS)
def test_every_verdict_has_a_colour(verdict):
    from sftlens.experiments._report import VERDICT_COLOURS

    assert verdict in VERDICT_COLOURS


def _zero_run(tmp_path, scale):
    """A countdown_lab run folder whose accuracy curves sit at 0% (no curve can dip)."""
    from sftlens.core import write_json, write_parquet

    ev = _evals(strong_end=0.0, weak_end=0.0)
    ev.loc[ev["metric"] == "accuracy", ["value", "ci_low", "ci_high"]] = 0.0
    write_parquet(ev, tmp_path / "tables" / "evals.parquet")
    write_json(tmp_path / "manifest.json", {"name": "countdown_lab", "scale": scale, "stages": {},
               "eval_order": ["in_domain", "harmful"]})  # fmt: skip
    return write_report(tmp_path)


def test_a_run_without_a_dip_quotes_the_shipped_small_scale_curves(tmp_path):
    from sftlens.experiments._shipped import shipped_results
    from sftlens.experiments._tables import dip_table

    shipped = {r.scale: r for r in shipped_results("countdown_lab")}
    assert "small" in shipped, "the small scale's result table ships with the package"
    small = shipped["small"]
    assert small.meta["command"] == "sftlens run countdown_lab --scale small"
    theirs = fnd.dip_finding(small.evals, dip_table(small.evals), small.meta["eval_labels"])

    index = _zero_run(tmp_path / "tiny", "tiny")
    p = _Tables()
    p.feed(index.read_text())
    dip_row = p.rows[1]
    assert dip_row[1] == fnd.NOT_SEEN  # this run's own verdict is unchanged
    assert "The shipped small-scale result (`sftlens run countdown_lab --scale small`" in dip_row[2]
    ev_text = theirs.evidence[:1].lower() + theirs.evidence[1:]
    assert f"says {theirs.verdict}: {ev_text}" in dip_row[2]
    assert p.links[1] == ["figures/shipped_small_accuracy.png"]
    assert (index.parent / "figures" / "shipped_small_accuracy.png").is_file()
    md = (index.parent / "summary.md").read_text()
    assert "## Dip and recovery at the small scale (shipped result)" in md

    # A run at the shipped scale answers for itself.
    index = _zero_run(tmp_path / "small", "small")
    assert "shipped" not in (index.parent / "summary.md").read_text()


def test_dip_row_names_the_curves_that_do_not_come_back():
    from sftlens.experiments._tables import dip_table

    rows = _acc("strong-cot", "toy-strong", "cot", [0.2, 0.0, 0.1, 0.4])
    rows += _acc("strong-cot", "toy-strong", "cot", [0.2, 0.0, 0.0, 0.0], ev="cross_domain")
    ev = pd.DataFrame(rows)
    f = fnd.dip_finding(ev, dip_table(ev), {"cross_domain": "cross-domain route-finding"})
    assert f.verdict == fnd.SEEN
    assert f.evidence.startswith("Dip, then recovery: strong-cot on in_domain: 20% [15, 25]")
    assert (
        "Dip without recovery: strong-cot on cross-domain route-finding: 20% [15, 25] at step 0"
        in (f.evidence)
    )
    assert "0% [0, 5] at step 160." in f.evidence
