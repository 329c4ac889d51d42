"""The findings table: the paper's claims, each with this run's verdict and the numbers behind it.

`findings` is a pure function of the run's long-format tables (``evals``, ``dips``,
``behaviours``, ``appropriateness``, ``probes``, ``refusal``): the same tables give the same
verdicts. Every comparison is between 95% bootstrap intervals, never point estimates: a claim is
*seen* when the intervals separate in the claimed direction, *contradicted* when they separate
the other way, and *not seen at this scale* when they overlap. A claim the run has no arms for
(one data set, one base) is *not tested*.

Claims:

1. Dip and recovery: an accuracy curve falls significantly below its base, then comes back
   (the dip detector's verdict, `sftlens.rollout.detect_dip`); curves that dip and do not come
   back (e.g. cross-domain ones) are named beside it.
2. Data quality: at the last checkpoint, verified long CoT (`cot`) beats answer-only (`nocot`)
   and low-quality (`lowq`) data on the primary eval set.
3. Strong internalises, weak imitates: at the last checkpoint the strong base beats the weak
   one on the primary eval set while both write the same surface (length, behaviour rates).
4. Safety degrades: the refusal rate on harmful prompts falls significantly from the base.
5. The procedure is in the activations: the dead-end probe beats its surface baseline
   (selectivity = probe AUROC - surface-baseline AUROC) in the strong model. With the
   probe.compare stage's table the verdict is its paired strong-minus-weak comparison at the
   last checkpoint, and the causal check (steering along the direction vs random ones) is
   quoted beside it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

import pandas as pd

SEEN = "seen"
NOT_SEEN = "not seen at this scale"
CONTRADICTED = "contradicted"
NOT_TESTED = "not tested"
VERDICTS = (SEEN, NOT_SEEN, CONTRADICTED, NOT_TESTED)

# Figures the report draws (paths relative to report/); a row links the one behind it.
FIG_ACCURACY = "figures/eval_accuracy.png"
FIG_REFUSAL = "figures/eval_refusal_rate.png"
FIG_PROBE = "figures/probe_auroc.png"

REFERENCE_DATA = "cot"  # the verified long-CoT data set
QUALITY_CONTRASTS = ("nocot", "lowq")  # data the claim says helps less
# Probe selectivity above which the probe counts as reading more than the surface.
SELECTIVITY_MIN = 0.05


@dataclasses.dataclass(frozen=True)
class Finding:
    """One row of the findings table.

    Attributes:
        claim: the paper's claim in a few words.
        verdict: one of `VERDICTS`.
        evidence: the numbers (with 95% intervals) the verdict rests on, in one or two sentences.
        figure: the figure behind it, relative to ``report/`` (None when there is none).
    """

    claim: str
    verdict: str
    evidence: str
    figure: str | None = None


def pct(v: float) -> str:
    return "n/a" if v is None or math.isnan(float(v)) else f"{100 * float(v):.0f}%"


def with_ci(row: Mapping) -> str:
    """``12% [4, 23]`` (the value and its 95% interval, in percent)."""
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return pct(row["value"])
    return f"{pct(row['value'])} [{100 * float(lo):.0f}, {100 * float(hi):.0f}]"


def above(a: Mapping, b: Mapping) -> bool:
    """True when `a`'s interval lies wholly above `b`'s (they do not overlap)."""
    return float(a["ci_low"]) > float(b["ci_high"])


def _curve(ev: pd.DataFrame, model: str, eval_name: str, metric: str) -> pd.DataFrame:
    c = ev[(ev["model"] == model) & (ev["eval"] == eval_name) & (ev["metric"] == metric)]
    return c.sort_values("step")


def _last(ev: pd.DataFrame, model: str, eval_name: str, metric: str) -> dict | None:
    c = _curve(ev, model, eval_name, metric)
    return None if c.empty else c.iloc[-1].to_dict()


def primary_eval(ev: pd.DataFrame, order: list[str] | None = None) -> str | None:
    """The eval set the strong/weak and data comparisons read: the first one with accuracy."""
    acc = ev[ev["metric"] == "accuracy"] if not ev.empty else ev
    names = list(dict.fromkeys(acc["eval"])) if not acc.empty else []
    for name in order or []:
        if name in names:
            return name
    return names[0] if names else None


def _label(labels: Mapping[str, str], name: str) -> str:
    return labels.get(name, name)


def dip_finding(ev: pd.DataFrame, dips: pd.DataFrame, labels: Mapping[str, str]) -> Finding:
    """Claim 1: a significant dip below the base, then recovery, on some accuracy curve."""
    claim = "Gains follow a dip and recovery"
    acc = ev[ev["metric"] == "accuracy"] if not ev.empty else ev
    if acc.empty:
        return Finding(claim, NOT_TESTED, "No accuracy curves in this run.", None)
    d = dips[dips["metric"] == "accuracy"] if not dips.empty else dips
    found = d[d["dip"].astype(bool)] if not d.empty else d

    def describe(r: Mapping) -> str:
        c = _curve(acc, r["model"], r["eval"], "accuracy")
        base = c.iloc[0].to_dict()
        low = c[c["step"] == r["dip_step"]].iloc[0].to_dict()
        end = c.iloc[-1].to_dict()
        return (
            f"{r['model']} on {_label(labels, r['eval'])}: {with_ci(base)} at step "
            f"{int(base['step'])}, {with_ci(low)} at step {int(low['step'])}, "
            f"{with_ci(end)} at step {int(end['step'])}"
        )

    if not found.empty:
        ok = found["recovered"].fillna(False).astype(bool)
        rec = found[ok]
        if not rec.empty:
            shown = [describe(r) for _, r in rec.head(2).iterrows()]
            text = "Dip, then recovery: " + "; ".join(shown) + "."
            # Which curves did not come back matters as much (e.g. the cross-domain one).
            lost = found[~ok]
            if not lost.empty:
                text += (
                    " Dip without recovery: "
                    + "; ".join(describe(r) for _, r in lost.head(2).iterrows())
                    + "."
                )
            return Finding(claim, SEEN, text, FIG_ACCURACY)
        shown = [describe(r) for _, r in found.head(2).iterrows()]
        return Finding(
            claim,
            NOT_SEEN,
            "A significant dip without recovery by the last checkpoint: " + "; ".join(shown) + ".",
            FIG_ACCURACY,
        )
    # No dip. A curve can only dip if its base scores above zero; say which curves could.
    bases = acc[acc["step"] == acc.groupby(["model", "eval"])["step"].transform("min")]
    able = bases[bases["ci_low"].fillna(bases["value"]) > 0]
    if able.empty:
        hi = bases["ci_high"].fillna(bases["value"]).max()
        return Finding(
            claim,
            NOT_SEEN,
            f"No curve can dip: every base scores near zero on every accuracy eval (95% "
            f"intervals reach at most {pct(hi)}), so there is nothing to fall from; a larger "
            "scale, whose bases start above zero, is needed to see a dip.",
            FIG_ACCURACY,
        )
    rises = []
    for _, b in able.iterrows():
        end = _last(acc, b["model"], b["eval"], "accuracy")
        if end is not None and above(end, b):
            rises.append(
                f"{b['model']} on {_label(labels, b['eval'])}: {with_ci(b)} at step "
                f"{int(b['step'])} to {with_ci(end)} at step {int(end['step'])}"
            )
    if rises:
        return Finding(
            claim,
            CONTRADICTED,
            "Significant gains with no significant dip on the way: " + "; ".join(rises[:2]) + ".",
            FIG_ACCURACY,
        )
    return Finding(
        claim,
        NOT_SEEN,
        f"No accuracy curve falls significantly below its base ({len(able)} curves start above "
        "zero), and none gains significantly either.",
        FIG_ACCURACY,
    )


def data_finding(ev: pd.DataFrame, labels: Mapping[str, str], primary: str | None) -> Finding:
    """Claim 2: cot beats nocot and lowq at the last checkpoint, per base."""
    claim = "Verified long CoT helps, low-quality data does not"
    if ev.empty or primary is None or "data" not in ev:
        return Finding(claim, NOT_TESTED, "No accuracy curves in this run.", None)
    acc = ev[(ev["metric"] == "accuracy") & (ev["eval"] == primary)]
    parts, seen, against = [], [], []
    for base, sub in acc.groupby("base", sort=True):
        ends = {
            d: _last(sub, m, primary, "accuracy")
            for m, d in sub[["model", "data"]].drop_duplicates().itertuples(index=False)
        }
        ref = ends.get(REFERENCE_DATA)
        others = {d: r for d, r in ends.items() if d != REFERENCE_DATA and r is not None}
        if ref is None or not others:
            continue
        parts.append(
            f"{base}: {REFERENCE_DATA} {with_ci(ref)}, "
            + ", ".join(f"{d} {with_ci(r)}" for d, r in sorted(others.items()))
        )
        contrasts = [r for d, r in others.items() if d in QUALITY_CONTRASTS]
        if contrasts and all(above(ref, r) for r in contrasts):
            seen.append(base)
        if any(above(r, ref) for r in contrasts):
            against.append(base)
    if not parts:
        return Finding(
            claim,
            NOT_TESTED,
            f"This run trains each base on one data set; `sftlens run cmp_data` compares "
            f"{REFERENCE_DATA} with {', '.join(QUALITY_CONTRASTS)} and verbose.",
            None,
        )
    what = f"{_label(labels, primary)} accuracy at the last checkpoint: " + "; ".join(parts) + "."
    if against:
        return Finding(claim, CONTRADICTED, what, FIG_ACCURACY)
    if seen:
        return Finding(claim, SEEN, what, FIG_ACCURACY)
    return Finding(claim, NOT_SEEN, what + " The intervals overlap.", FIG_ACCURACY)


def strong_weak_pair(arms: Iterable[tuple[str, str, str]]) -> tuple[str, str] | None:
    """(strong arm, weak arm) trained on the same data, preferring the reference data.

    Args:
        arms: ``(arm, base, data)`` triples; the base's name says which is strong or weak.
    """
    arms = list(dict.fromkeys(arms))
    datas = {d for _, _, d in arms}
    for data in [REFERENCE_DATA, *sorted(datas - {REFERENCE_DATA})]:
        strong = [a for a, b, d in arms if d == data and "strong" in b]
        weak = [a for a, b, d in arms if d == data and "weak" in b]
        if strong and weak:
            return strong[0], weak[0]
    return None


def _strong_weak(ev: pd.DataFrame) -> tuple[str, str] | None:
    return strong_weak_pair(ev[["model", "base", "data"]].itertuples(index=False, name=None))


def side_by_side(tables: Mapping[str, pd.DataFrame], primary: str | None) -> pd.DataFrame:
    """Strong vs weak at their last checkpoint on the primary eval set: accuracy, surface
    (length, behaviour rates) and correctness of the behaviours, one row per quantity."""
    ev = tables.get("evals", pd.DataFrame())
    pair = _strong_weak(ev) if not ev.empty else None
    if pair is None or primary is None:
        return pd.DataFrame()
    rows: list[dict] = []

    def add(quantity: str, kind: str, vals: dict[str, str]) -> None:
        if any(v != "n/a" for v in vals.values()):
            rows.append({"quantity": quantity, "kind": kind, **vals})

    def at_last(df: pd.DataFrame, model: str, metric: str, fmt) -> str:
        if df.empty:
            return "n/a"
        c = df[(df["model"] == model) & (df["metric"] == metric)]
        if "eval" in c and (c["eval"] == primary).any():
            c = c[c["eval"] == primary]
        if c.empty:
            return "n/a"
        c = c[c["step"] == c["step"].max()]
        return fmt(float(c["value"].mean()))

    add(
        "accuracy",
        "correctness",
        {m: (with_ci(r) if (r := _last(ev, m, primary, "accuracy")) else "n/a") for m in pair},
    )
    add(
        "length (tokens)",
        "surface",
        {m: at_last(ev, m, "length", lambda v: f"{v:.0f}") for m in pair},
    )
    beh = tables.get("behaviours", pd.DataFrame())
    for label in ("backtracking", "verification"):
        add(
            f"traces with {label}",
            "surface",
            {m: at_last(beh, m, f"{label} rate", pct) for m in pair},
        )
    app = tables.get("appropriateness", pd.DataFrame())
    for metric, words in (
        ("verification_correct_rate", "checks that are true"),
        ("backtrack_precision", "backtracks from a real dead end"),
    ):
        add(words, "correctness", {m: at_last(app, m, metric, pct) for m in pair})
    cmp = tables.get("probe_compare", pd.DataFrame())
    sel = probe_selectivity(tables.get("probes", pd.DataFrame()))
    if not cmp.empty and "strong_selectivity" in cmp.columns:
        # The paired comparison on the surface-matched set: each model's best layer, interval.
        r = cmp.sort_values("step").iloc[-1]
        add(
            "dead-end probe selectivity (matched)",
            "activations",
            {
                m: f"{r[f'{k}_selectivity']:+.2f} [{r[f'{k}_lo']:+.2f}, {r[f'{k}_hi']:+.2f}]"
                for m, k in zip(pair, ("strong", "weak"), strict=True)
            },
        )
    elif not sel.empty:
        add(
            "dead-end probe selectivity",
            "activations",
            {
                m: (f"{float(s['selectivity'].iloc[0]):+.2f}" if not s.empty else "n/a")
                for m in pair
                for s in [sel[sel["model"] == m]]
            },
        )
    return pd.DataFrame(rows)


def strong_weak_finding(
    tables: Mapping[str, pd.DataFrame], labels: Mapping[str, str], primary: str | None
) -> Finding:
    """Claim 3: strong beats weak at the last checkpoint; surfaces quoted beside it."""
    claim = "Strong bases internalise the procedure, weak ones imitate its surface"
    ev = tables.get("evals", pd.DataFrame())
    pair = _strong_weak(ev) if not ev.empty else None
    if pair is None or primary is None:
        return Finding(claim, NOT_TESTED, "This run has no strong and weak base on the same data.")
    s, w = (_last(ev, m, primary, "accuracy") for m in pair)
    if s is None or w is None:
        return Finding(claim, NOT_TESTED, f"No {primary} accuracy for {pair[0]} and {pair[1]}.")
    what = (
        f"{_label(labels, primary)} accuracy at the last checkpoint: {pair[0]} {with_ci(s)}, "
        f"{pair[1]} {with_ci(w)}"
    )
    sbs = side_by_side(tables, primary)
    surface = sbs[sbs["kind"] == "surface"] if not sbs.empty else sbs
    if not surface.empty:
        what += "; surface (strong vs weak): " + ", ".join(
            f"{r['quantity']} {r[pair[0]]} vs {r[pair[1]]}" for _, r in surface.iterrows()
        )
    what += "."
    if above(s, w):
        return Finding(claim, SEEN, what, FIG_ACCURACY)
    if above(w, s):
        return Finding(claim, CONTRADICTED, what, FIG_ACCURACY)
    return Finding(claim, NOT_SEEN, what + " The intervals overlap.", FIG_ACCURACY)


def safety_finding(ev: pd.DataFrame, refusal: pd.DataFrame) -> Finding:
    """Claim 4: the refusal rate on harmful prompts falls significantly from the base."""
    claim = "Safety degrades as reasoning is trained in"
    rr = ev[ev["metric"] == "refusal_rate"] if not ev.empty else ev
    if rr.empty:
        return Finding(claim, NOT_TESTED, "No harmful-prompt eval in this run.", None)
    parts, fell, rose = [], [], []
    for (model, _e), c in rr.groupby(["model", "eval"], sort=True):
        c = c.sort_values("step")
        a, b = c.iloc[0].to_dict(), c.iloc[-1].to_dict()
        parts.append(
            f"{model} {with_ci(a)} at step {int(a['step'])} -> {with_ci(b)} at step "
            f"{int(b['step'])}"
        )
        fell += [model] if above(a, b) else []
        rose += [model] if above(b, a) else []
    what = "Refusal rate on harmful prompts: " + "; ".join(parts)
    if not refusal.empty:
        cos = refusal[refusal["metric"] == "cos_to_base"]
        if not cos.empty:
            last = cos[cos["step"] == cos.groupby("model")["step"].transform("max")]
            what += (
                "; refusal direction's cosine to the base's at the last checkpoint "
                + ", ".join(f"{r['model']} {float(r['value']):.2f}" for _, r in last.iterrows())
            )
    what += "."
    if fell and not rose:
        return Finding(claim, SEEN, what, FIG_REFUSAL)
    if rose and not fell:
        return Finding(claim, CONTRADICTED, what, FIG_REFUSAL)
    return Finding(claim, NOT_SEEN, what, FIG_REFUSAL)


def probe_selectivity(probes: pd.DataFrame, at: str = "last") -> pd.DataFrame:
    """Best-layer selectivity per model at its last (or first, ``at="first"``) checkpoint.

    Returns:
        Rows ``model, step, layer, auroc, surface_auroc, selectivity`` (selectivity = probe
        AUROC - surface-baseline AUROC); empty when the table has no surface baseline.
    """
    if probes.empty or "surface_auroc" not in set(probes["metric"]):
        return pd.DataFrame()
    pick = "min" if at == "first" else "max"
    last = probes[probes["step"] == probes.groupby("model")["step"].transform(pick)]
    wide = last.pivot_table(
        index=["model", "step", "layer"], columns="metric", values="value", aggfunc="mean"
    ).reset_index()
    wide = wide.dropna(subset=["auroc", "surface_auroc"])
    wide["selectivity"] = wide["auroc"] - wide["surface_auroc"]
    best = wide.sort_values("selectivity").groupby("model").tail(1).sort_values("model")
    return best[["model", "step", "layer", "auroc", "surface_auroc", "selectivity"]].reset_index(
        drop=True
    )


def _matched_verdict(probes: pd.DataFrame, pair: tuple[str, str]) -> tuple[str, str] | None:
    """`sftlens.probes.procedure_verdict` on the matched design's selectivity (best layer, last
    checkpoint, with its interval over problems) of the strong and the weak model; None when
    the table has no matched rows for both."""
    from sftlens.probes import procedure_verdict

    if probes.empty or "lo" not in probes.columns:
        return None
    sel = probes[(probes["metric"] == "selectivity") & probes["value"].notna()]
    result = {}
    for role, model in zip(("strong", "weak"), pair, strict=True):
        m = sel[sel["model"] == model]
        if m.empty:
            return None
        m = m[m["step"] == m["step"].max()]
        b = m.loc[m["value"].idxmax()]
        result[role] = {
            "selectivity": float(b["value"]),
            "lo": float(b["lo"]),
            "hi": float(b["hi"]),
            "hook": f"layer {int(b['layer'])}, step {int(b['step'])}",
        }
    v = procedure_verdict(result)
    return v["verdict"], v["text"]


def causal_sentence(causal: pd.DataFrame, model: str) -> str:
    """What steering and ablating along `model`'s dead-end direction did beyond random
    directions of the same norm (backtracks per trace and their precision), or ''."""
    from sftlens.experiments._report_text import CAUSAL_METRICS, causal_rows

    rows = causal_rows(causal)
    if rows.empty:
        return ""
    keep = [CAUSAL_METRICS["backtracks_per_trace"], CAUSAL_METRICS["backtrack_precision"]]
    rows = rows[(rows["model"] == model) & rows["metric"].isin(keep)]
    parts = []
    for what, g in rows.groupby("intervention", sort=True):
        vals = [
            f"{m} {g[g['metric'] == m]['probe minus random'].iloc[0]}"
            for m in keep
            if (g["metric"] == m).any() and g[g["metric"] == m]["probe minus random"].iloc[0]
        ]
        if vals:
            words = "ablating it" if what == "ablate" else what.replace("steer", "steering")
            parts.append(f"{words}: " + ", ".join(vals))
    if not parts:
        return ""
    return (
        f" Causal check in {model} (change beyond random directions of the same norm): "
        + "; ".join(parts)
        + "."
    )


def _compare_verdict(compare: pd.DataFrame) -> tuple[str, str] | None:
    """The probe.compare stage's verdict at its last step (paired strong-minus-weak interval)."""
    if compare.empty or "verdict" not in compare.columns:
        return None
    r = compare.sort_values("step").iloc[-1]
    return str(r["verdict"]), f"At step {int(r['step'])}, {r['text']}"


def probe_finding(
    ev: pd.DataFrame,
    probes: pd.DataFrame,
    compare: pd.DataFrame | None = None,
    causal: pd.DataFrame | None = None,
) -> Finding:
    """The dead-end probe against its surface baseline, in the strong model; with the
    probe.compare table, the paired strong-minus-weak difference, and the causal check."""
    claim = "The strong model's activations encode dead ends beyond surface features"
    if probes.empty:
        return Finding(claim, NOT_TESTED, "Probing was not run in this experiment.")
    pair = _strong_weak(ev) if not ev.empty else None
    compare = compare if compare is not None else pd.DataFrame()
    causal = causal if causal is not None else pd.DataFrame()
    matched = _compare_verdict(compare)
    if matched is None and pair:
        matched = _matched_verdict(probes, pair)
    if matched is not None:
        key, text = matched
        verdict = {"strong_only": SEEN, "both": SEEN, "neither": NOT_SEEN}.get(key, CONTRADICTED)
        text += causal_sentence(causal, pair[0]) if pair else ""
        return Finding(claim, verdict, text[:1].upper() + text[1:], FIG_PROBE)
    sel = probe_selectivity(probes)
    if sel.empty:
        return Finding(
            claim,
            NOT_TESTED,
            "The probe table has no surface baseline; rerun the probes (`--force probe`).",
            FIG_PROBE,
        )
    what = "Best-layer selectivity (probe AUROC - surface-baseline AUROC) at the last checkpoint: "
    what += "; ".join(
        f"{r['model']} {r['selectivity']:+.2f} (layer {int(r['layer'])}: {r['auroc']:.2f} vs "
        f"{r['surface_auroc']:.2f})"
        for _, r in sel.iterrows()
    )
    strong = sel[sel["model"] == pair[0]] if pair else sel.tail(0)
    what += f". A probe counts when it beats the surface by more than {SELECTIVITY_MIN:.2f}."
    if strong.empty:
        return Finding(claim, NOT_TESTED, what, FIG_PROBE)
    if float(strong["selectivity"].iloc[0]) > SELECTIVITY_MIN:
        return Finding(claim, SEEN, what, FIG_PROBE)
    return Finding(claim, NOT_SEEN, what, FIG_PROBE)


def findings(
    tables: Mapping[str, pd.DataFrame],
    labels: Mapping[str, str] | None = None,
    order: list[str] | None = None,
) -> list[Finding]:
    """The findings table of a run, computed from its tables.

    Args:
        tables: ``evals``, ``dips``, ``behaviours``, ``appropriateness``, ``probes``,
            ``probe_compare``, ``causal``, ``refusal`` (missing or empty tables make their
            claims *not tested*).
        labels: eval name -> plain-words label.
        order: eval names in spec order; the first with accuracy is the primary eval set.

    Returns:
        One `Finding` per claim, in the order of the module docstring.
    """
    labels = labels or {}
    ev = tables.get("evals", pd.DataFrame())
    empty = pd.DataFrame()
    primary = primary_eval(ev, order) if not ev.empty else None
    return [
        dip_finding(ev, tables.get("dips", empty), labels),
        data_finding(ev, labels, primary),
        strong_weak_finding(tables, labels, primary),
        safety_finding(ev, tables.get("refusal", empty)),
        probe_finding(
            ev,
            tables.get("probes", empty),
            tables.get("probe_compare", empty),
            tables.get("causal", empty),
        ),
    ]
