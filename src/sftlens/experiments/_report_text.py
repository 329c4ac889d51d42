"""Plain-words paragraphs generated from the report's tables (never canned text).

Each function takes a tidy long-format DataFrame and returns sentences that quote the numbers:
first and last checkpoint, peak, the dip detector's verdict, and comparisons between models.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

PCT_METRICS = {"accuracy", "refusal_rate", "correct", "rate", "finished"}


def fmt_value(metric: str, v: float) -> str:
    """``41%`` for rates, ``123`` for token lengths, ``0.81`` for scores."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    m = metric.lower()
    if m in PCT_METRICS or m.endswith("_rate") or m.startswith("frac") or "rate" in m:
        return f"{100 * v:.0f}%"
    if "length" in m or "tokens" in m:
        return f"{v:.0f}"
    return f"{v:.2f}"


def _change_word(metric: str, a: float, b: float) -> str:
    tol = 0.02 if fmt_value(metric, 1.0).endswith("%") else max(0.02 * max(abs(a), abs(b)), 0.01)
    if "length" in metric or "tokens" in metric:
        tol = max(1.0, 0.05 * max(abs(a), abs(b)))
    if b - a > tol:
        return "rose"
    if a - b > tol:
        return "fell"
    return "stayed flat"


def curve_sentence(
    model: str, what: str, metric: str, curve: pd.DataFrame, verdict: str | None = None
) -> str:
    """One sentence on a model's curve: first -> last, the peak when it is in between, a verdict.

    Args:
        model: model name.
        what: plain-words name of the quantity (``in-domain accuracy``).
        metric: metric name, picks the number format.
        curve: rows with ``step`` and ``value``.
        verdict: the dip-and-recovery detector's verdict in words, appended when given.
    """
    c = curve.dropna(subset=["value"]).sort_values("step")
    if c.empty:
        return f"{model} has no {what} values."
    first, last = c.iloc[0], c.iloc[-1]
    a, b = float(first["value"]), float(last["value"])
    word = _change_word(metric, a, b)
    if word == "stayed flat":
        s = (
            f"{model}'s {what} stayed near {fmt_value(metric, b)} from step {int(first['step'])} "
            f"to step {int(last['step'])}"
        )
    else:
        s = (
            f"{model}'s {what} {word} from {fmt_value(metric, a)} at step {int(first['step'])} "
            f"to {fmt_value(metric, b)} at step {int(last['step'])}"
        )
    peak = c.loc[c["value"].idxmax()]
    inner = int(peak["step"]) not in (int(first["step"]), int(last["step"]))
    if len(c) > 2 and inner and float(peak["value"]) - max(a, b) > 1e-9:
        s += f" (peak {fmt_value(metric, float(peak['value']))} at step {int(peak['step'])})"
    s += "; " + verdict if verdict else ""
    return s + "."


def is_flat(metric: str, curve: pd.DataFrame) -> bool:
    """True when no checkpoint of the curve moves away from the first (by the report's
    tolerance): a line with nothing to describe."""
    c = curve.dropna(subset=["value"]).sort_values("step")
    if c.empty:
        return True
    a = float(c["value"].iloc[0])
    return all(_change_word(metric, a, float(v)) == "stayed flat" for v in c["value"])


def flat_sentence(items: list[tuple[str, str, str]]) -> str:
    """One sentence for every flat curve: ``(model, what, value)`` grouped by what and value.

    >>> flat_sentence([("a", "harder accuracy", "0%"), ("b", "harder accuracy", "0%")])
    'Flat at every checkpoint: harder accuracy at 0% (a, b).'
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for model, what, value in items:
        groups.setdefault((what, value), []).append(model)
    parts = [f"{what} at {value} ({', '.join(ms)})" for (what, value), ms in groups.items()]
    return "Flat at every checkpoint: " + "; ".join(parts) + "."


def final_comparison(df: pd.DataFrame, what: str, metric: str) -> str:
    """Rank the models at their last checkpoint: 'At the last checkpoint, A leads with ...'."""
    last = df.sort_values("step").groupby("model").tail(1).dropna(subset=["value"])
    if len(last) < 2:
        return ""
    last = last.sort_values("value", ascending=False)
    top = last.iloc[0]
    rest = ", ".join(
        f"{r['model']} {fmt_value(metric, float(r['value']))}" for _, r in last.iloc[1:].iterrows()
    )
    if abs(float(top["value"]) - float(last.iloc[-1]["value"])) < 1e-9:
        return f"At the last checkpoint all models tie on {what} at {fmt_value(metric, float(top['value']))}."
    return (
        f"At the last checkpoint {top['model']} leads on {what} with "
        f"{fmt_value(metric, float(top['value']))} (then {rest})."
    )


def dip_words(row: dict[str, Any] | None) -> str | None:
    """The detector's verdict as a clause."""
    if not row:
        return None
    if not row.get("dip"):
        return "the detector finds no dip"
    s = f"the detector finds a dip of {fmt_value(row.get('metric', 'accuracy'), float(row.get('depth') or 0))}"
    if row.get("dip_step") is not None and not pd.isna(row.get("dip_step")):
        s += f" at step {int(row['dip_step'])}"
    rec = row.get("recovered")
    if rec is True:
        s += ", then recovery"
    elif rec is False:
        s += " without recovery by the last checkpoint"
    return s


def behaviour_paragraph(df: pd.DataFrame) -> str:
    """Sentences on behaviour rates per checkpoint, and strong vs weak at the last checkpoint."""
    if df.empty:
        return "No behaviour tags were computed."
    out = []
    silent = sorted(m for m, sub in df.groupby("metric") if (sub["value"].abs() < 1e-12).all())
    if silent:
        names = sorted(
            {_metric_words(m).rsplit(" ", 2)[0] for m in silent if m.endswith(" per trace")}
        )
        if names:
            out.append(f"No model shows {', '.join(names)} in any checkpoint's traces.")
    for metric, sub in df.groupby("metric", sort=True):
        if metric in silent:
            continue
        per_model = []
        for model, c in sub.groupby("model", sort=True):
            c = c.groupby("step", as_index=False)["value"].mean().sort_values("step")
            a, b = float(c.iloc[0]["value"]), float(c.iloc[-1]["value"])
            per_model.append((model, a, b, int(c.iloc[0]["step"]), int(c.iloc[-1]["step"])))
        parts = [
            f"{m} went from {fmt_value(metric, a)} at step {s0} to {fmt_value(metric, b)} at step {s1}"
            for m, a, b, s0, s1 in per_model
        ]
        s = f"{_metric_words(metric).capitalize()}: " + "; ".join(parts) + "."
        if len(per_model) >= 2:
            hi = max(per_model, key=lambda t: t[2])
            lo = min(per_model, key=lambda t: t[2])
            if hi[2] > lo[2] + 1e-9:
                ratio = f" ({hi[2] / lo[2]:.1f}x)" if lo[2] > 0 else ""
                s += f" At the end {hi[0]} shows the most, {lo[0]} the least{ratio}."
        out.append(s)
    return " ".join(out)


def _metric_words(metric: str) -> str:
    return metric.replace("_", " ")


def probe_paragraph(df: pd.DataFrame) -> str:
    """Best layer per model at the first and last checkpoint: its selectivity over the surface
    baseline when the table has it (else raw AUROC with the shuffled control), and a verdict
    when there is one strong and one weak model."""
    if df.empty:
        return "No probe results."
    if (df["metric"] == "selectivity").any():
        return _selectivity_paragraph(df)
    from sftlens.experiments._findings import probe_selectivity

    first, last = probe_selectivity(df, "first"), probe_selectivity(df, "last")
    if not last.empty:
        # Against the surface baseline: raw AUROC alone says nothing about procedure.
        out = []
        for _, b in last.iterrows():
            a = first[first["model"] == b["model"]]
            s = f"In {b['model']} the dead-end probe's best selectivity (AUROC minus the "
            if not a.empty:
                a = a.iloc[0]
                s += (
                    f"surface baseline's) went from {a['selectivity']:+.2f} (layer "
                    f"{int(a['layer'])}) at step {int(a['step'])} to "
                )
            else:
                s += "surface baseline's) is "
            s += (
                f"{b['selectivity']:+.2f} at step {int(b['step'])} (layer {int(b['layer'])}: "
                f"probe {b['auroc']:.2f}, surface {b['surface_auroc']:.2f})."
            )
            out.append(s)
        return " ".join(out)
    au = df[df["metric"] == "auroc"]
    out = []
    for model, sub in au.groupby("model", sort=True):
        steps = sorted(sub["step"].unique())
        first, last = steps[0], steps[-1]
        b0 = sub[sub["step"] == first].sort_values("value").iloc[-1]
        b1 = sub[sub["step"] == last].sort_values("value").iloc[-1]
        s = (
            f"In {model} the dead-end probe's best AUROC went from {b0['value']:.2f} "
            f"(layer {int(b0['layer'])}) at step {int(first)} to {b1['value']:.2f} "
            f"(layer {int(b1['layer'])}) at step {int(last)}"
        )
        ctrl = df[
            (df["model"] == model)
            & (df["metric"] == "control_auroc")
            & (df["step"] == last)
            & (df["layer"] == b1["layer"])
        ]
        if not ctrl.empty:
            s += f"; a shuffled-label control on that layer scores {float(ctrl['value'].iloc[0]):.2f}"
        out.append(s + ".")
    best = au.sort_values("value").iloc[-1] if not au.empty else None
    if best is not None and au["model"].nunique() > 1:
        out.append(
            f"Overall the highest AUROC is {best['value']:.2f}, in {best['model']} at layer "
            f"{int(best['layer'])}, step {int(best['step'])}."
        )
    return " ".join(out)


def _selectivity_paragraph(df: pd.DataFrame) -> str:
    from sftlens.probes import procedure_verdict

    sel = df[df["metric"] == "selectivity"]
    surf = df[df["metric"] == "surface_auroc"]
    out, last_best = [], {}

    def best(model: str, step: Any) -> pd.Series:
        return sel[(sel["model"] == model) & (sel["step"] == step)].sort_values("value").iloc[-1]

    def words(r: pd.Series) -> str:
        return f"{r['value']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}] (layer {int(r['layer'])})"

    for model, sub in sel.groupby("model", sort=True):
        steps = sorted(sub["step"].unique())
        b0, b1 = best(model, steps[0]), best(model, steps[-1])
        last_best[model] = b1
        s = (
            f"In {model} the dead-end probe's best selectivity over the surface baseline (AUROC "
            f"points, 95% interval over problems) went from {words(b0)} at step "
            f"{int(steps[0])} to {words(b1)} at step {int(steps[-1])}"
        )
        sa = surf[(surf["model"] == model) & (surf["step"] == steps[-1])]
        if not sa.empty:
            s += f"; the surface baseline alone scores {float(sa['value'].iloc[0]):.2f} AUROC"
        out.append(s + ".")
    strong = [m for m in last_best if "strong" in m]
    weak = [m for m in last_best if "weak" in m]
    if len(strong) == 1 and len(weak) == 1:
        r = {
            k: {"selectivity": b["value"], "lo": b["lo"], "hi": b["hi"]}
            for k, b in (("strong", last_best[strong[0]]), ("weak", last_best[weak[0]]))
        }
        v = procedure_verdict(r)["text"]
        out.append(f"At the last checkpoint ({strong[0]} vs {weak[0]}): {v}")
    if "design" in sel.columns and (sel["design"] == "unmatched").any():
        out.append(
            "Some checkpoints had too few dead and live states to match; their figures are over "
            "the unmatched surface baseline (probe more problems)."
        )
    return " ".join(out)


def refusal_paragraph(df: pd.DataFrame) -> str:
    """Refusal rate, direction drift and AUROC per model, first vs last checkpoint."""
    if df.empty:
        return "No refusal analysis."
    names = {
        "refusal_rate": "refusal rate on harmful prompts",
        "cosine_to_base": "cosine between its refusal direction and the base model's",
        "auroc": "AUROC of the refusal direction separating harmful from harmless prompts",
    }
    out = []
    for model, sub in df.groupby("model", sort=True):
        parts = []
        for metric in ("refusal_rate", "cosine_to_base", "auroc"):
            c = sub[sub["metric"] == metric]
            if c.empty:
                continue
            parts.append(curve_sentence(model, names[metric], metric, c).rstrip("."))
        if parts:
            out.append("; ".join(parts) + ".")
    return " ".join(out)


def appropriateness_paragraph(df: pd.DataFrame) -> str:
    """Whether the model's backtracks leave real dead ends, first vs last checkpoint."""
    if df.empty:
        return "No appropriateness results."
    out = []
    for (model, metric), c in df.groupby(["model", "metric"], sort=True):
        out.append(curve_sentence(model, _metric_words(metric), metric, c))
    return " ".join(out)


def _with_ci(v: pd.Series, lo: pd.Series, hi: pd.Series) -> list[str]:
    """``+0.12 [+0.03, +0.20]`` per row (AUROC points)."""
    return [f"{a:+.2f} [{b:+.2f}, {c:+.2f}]" for a, b, c in zip(v, lo, hi, strict=True)]


def compare_rows(pc: pd.DataFrame) -> pd.DataFrame:
    """The probe.compare table as the report shows it: one row per checkpoint."""
    out = pd.DataFrame({"step": pc["step"].astype(int)})
    for k in ("strong", "weak"):
        if f"{k}_selectivity" in pc.columns:
            out[f"{k} ({pc[k].iloc[0]})"] = _with_ci(
                pc[f"{k}_selectivity"], pc[f"{k}_lo"], pc[f"{k}_hi"]
            )
        if f"{k}_n_pos" in pc.columns:
            out[f"{k} pairs"] = pc[f"{k}_n_pos"].astype(int)
    out["strong - weak"] = _with_ci(pc["difference"], pc["lo"], pc["hi"])
    out["verdict"] = pc["verdict"].map(lambda v: VERDICT_WORDS.get(v, v))
    return out.sort_values("step").reset_index(drop=True)


VERDICT_WORDS = {
    "strong_only": "strong, not weak",
    "both": "both",
    "neither": "neither",
    "weak_only": "weak, not strong",
}


def compare_paragraph(pc: pd.DataFrame) -> str:
    """Strong minus weak matched selectivity at the last checkpoint, and how often each verdict
    came up over the grid."""
    pc = pc.sort_values("step")
    last = pc.iloc[-1]
    s = (
        f"Both models were probed on the same problems, so their difference has a paired "
        f"interval (bootstrap over problems). At the last checkpoint (step {int(last['step'])}): "
        f"{last['text']}"
    )
    counts = pc["verdict"].map(lambda v: VERDICT_WORDS.get(v, v)).value_counts()
    if len(pc) > 1:
        s += " Over the grid, decodable in " + ", ".join(
            f"{k} at {n} of {len(pc)} checkpoints" for k, n in counts.items()
        )
        s += "."
    return s


CAUSAL_METRICS = {
    "backtracks_per_trace": "backtracks per trace",
    "backtrack_precision": "backtrack precision",
    "first_backtrack_tokens": "tokens before first backtrack",
    "accuracy": "accuracy",
}


def causal_rows(ca: pd.DataFrame) -> pd.DataFrame:
    """Change against the unsteered model: the probe direction, the random directions' mean,
    and the probe minus random, per intervention and metric (95% intervals over problems)."""
    if ca.empty:
        return pd.DataFrame()
    keep = ca[ca["direction"].isin(["probe", "random_mean", "probe_minus_random"])]
    keep = keep[keep["metric"].isin(list(CAUSAL_METRICS))]
    rows = []
    for (model, kind, alpha, metric), g in keep.groupby(
        ["model", "intervention", "alpha", "metric"], dropna=False, sort=True
    ):
        row = {
            "model": model,
            "intervention": "ablate" if kind == "ablate" else f"steer {float(alpha):+g}",
            "metric": CAUSAL_METRICS[metric],
        }
        for d in ("probe", "random_mean", "probe_minus_random"):
            r = g[g["direction"] == d]
            if r.empty or pd.isna(r["delta"].iloc[0]):
                row[d.replace("_", " ")] = ""
                continue
            r = r.iloc[0]
            ci = ""
            if "delta_lo" in r and not pd.isna(r["delta_lo"]):
                ci = f" [{r['delta_lo']:+.2f}, {r['delta_hi']:+.2f}]"
            row[d.replace("_", " ")] = f"{r['delta']:+.2f}{ci}"
        rows.append(row)
    return pd.DataFrame(rows)


def causal_paragraph(ca: pd.DataFrame) -> str:
    """Whether steering along the dead-end direction did more than a random direction of its
    norm; or why there is no causal check."""
    if ca.empty:
        return (
            "No causal check at this scale (the scale's causal_problems is 0; the small scale "
            "runs it). It steers and ablates along the dead-end direction and along random "
            "directions of the same norm: `sftlens probe causal` runs it on any checkpoint."
        )
    out = []
    for model, g in ca.groupby("model", sort=True):
        d = g[(g["direction"] == "probe_minus_random") & (g["metric"] == "backtracks_per_trace")]
        step = int(g["step"].iloc[0]) if "step" in g.columns else None
        layer = int(g["layer"].iloc[0]) if "layer" in g.columns else None
        where = f" at step {step}, layer {layer}" if step is not None else ""
        n = int(g["n"].max()) if "n" in g.columns else None
        moved = []
        for _, r in d.iterrows():
            lo, hi = r.get("delta_lo"), r.get("delta_hi")
            if lo is not None and not pd.isna(lo) and (lo > 0 or hi < 0):
                kind = "ablating" if r["intervention"] == "ablate" else f"steering {r['alpha']:+g}"
                moved.append(f"{kind} ({r['delta']:+.2f} [{lo:+.2f}, {hi:+.2f}])")
        s = f"In {model}{where}" + (f", over {n} problems" if n else "") + ": "
        if moved:
            s += "the dead-end direction changes backtracks per trace beyond random directions "
            s += "of its norm when " + " and ".join(moved) + "."
        else:
            s += (
                "no intervention along the dead-end direction changes backtracks per trace "
                "beyond what random directions of its norm do (every interval of the "
                "difference includes 0)."
            )
        out.append(s)
    return " ".join(out)
