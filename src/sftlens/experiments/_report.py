"""The run report: ``report/index.html`` (static, no server) and ``report/summary.md``.

Everything is drawn from the long-format tables in ``<run>/tables/``; each figure is a pure
function of a DataFrame and is saved as PNG beside the CSV it was drawn from. Each section opens
with a paragraph generated from the same numbers (`sftlens.experiments._report_text`).
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from sftlens.core import (
    atomic_dir,
    interrupt_point,
    plot_lines,
    read_json,
    read_jsonl,
    read_parquet,
    write_text,
)
from sftlens.experiments import _findings as fnd
from sftlens.experiments import _report_text as txt

TABLES_DIR = "tables"
REPORT_DIR = "report"
FIGURES_DIR = "figures"
INDEX_HTML = "index.html"
SUMMARY_MD = "summary.md"
EVALS_TABLE = "evals.parquet"
DIPS_TABLE = "dips.parquet"
BEHAVIOURS_TABLE = "behaviours.parquet"
APPROPRIATENESS_TABLE = "appropriateness.parquet"
PROBES_TABLE = "probes.parquet"
REFUSAL_TABLE = "refusal.parquet"
PROBE_COMPARE_TABLE = "probe_compare.parquet"
CAUSAL_TABLE = "causal.parquet"
EXAMPLES_FILE = "examples.jsonl"

# Span label -> highlight colour in the tagged-trace section.
LABEL_COLOURS = {
    "backtracking": "#f4a3a3",
    "verification": "#a3d9a5",
    "subgoal_setting": "#a3c4f4",
    "backward_chaining": "#e3c6f4",
    "hedging": "#f4e3a3",
}


# The columns each section reads; a table without one is an error naming it, not a crash.
_CURVE = ("model", "step", "metric", "value")
REPORT_COLUMNS = {
    EVALS_TABLE: (*_CURVE, "eval"),
    DIPS_TABLE: ("model",),
    BEHAVIOURS_TABLE: _CURVE,
    APPROPRIATENESS_TABLE: _CURVE,
    PROBES_TABLE: (*_CURVE, "layer"),
    REFUSAL_TABLE: _CURVE,
    PROBE_COMPARE_TABLE: ("step", "strong", "weak", "difference", "lo", "hi", "verdict", "text"),
    CAUSAL_TABLE: ("model", "direction", "intervention", "alpha", "metric", "delta"),
}


def _table(run_dir: Path, name: str) -> pd.DataFrame:
    p = run_dir / TABLES_DIR / name
    if not p.is_file():
        return pd.DataFrame()
    return read_parquet(p, columns=REPORT_COLUMNS.get(name, ()))


def _img(rel: str, alt: str) -> str:
    csv = rel[:-4] + ".csv"
    return (
        f'<figure><img src="{html.escape(rel)}" alt="{html.escape(alt)}">'
        f'<figcaption>{html.escape(alt)} — <a href="{html.escape(csv)}">data (CSV)</a></figcaption>'
        "</figure>"
    )


def _highlight(text: str, spans: list[dict]) -> str:
    """HTML of `text` with non-overlapping spans wrapped in coloured marks."""
    out, pos = [], 0
    for sp in sorted(spans, key=lambda s: (s.get("start", 0), -s.get("end", 0))):
        a, b = int(sp.get("start", 0)), int(sp.get("end", 0))
        if a < pos or b <= a or b > len(text):
            continue
        label = str(sp.get("label", ""))
        colour = LABEL_COLOURS.get(label, "#dddddd")
        out.append(html.escape(text[pos:a]))
        out.append(
            f'<mark style="background:{colour}" title="{html.escape(label)}">'
            f"{html.escape(text[a:b])}</mark>"
        )
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
figure{margin:1em 0} img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555} table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right} th{background:#f4f4f4}
pre.trace{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:.5em;font-size:.8em}
.meta{color:#666;font-size:.85em} mark{padding:0 1px;border-radius:2px}
"""


def _df_html(df: pd.DataFrame, max_rows: int = 40) -> str:
    return df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0)


def write_report(run_dir: str | Path) -> Path:
    """Write ``report/index.html`` and ``report/summary.md`` from the run's tables.

    Sections whose table is absent (an analysis the spec switched off) say so.

    Args:
        run_dir: a run folder with ``tables/`` (and ``spec.yaml``, ``manifest.json``).

    Returns:
        The path of ``index.html``.
    """
    run_dir = Path(run_dir)
    # The whole folder is written aside and renamed: an interrupted write leaves the previous
    # report (or none), never a summary that does not match its page and figures.
    with atomic_dir(run_dir / REPORT_DIR) as rep:
        _write_report_files(run_dir, rep)
    return run_dir / REPORT_DIR / INDEX_HTML


def _write_report_files(run_dir: Path, rep: Path) -> None:
    figs = rep / FIGURES_DIR
    man = read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
    labels = man.get("eval_labels", {})
    sections: list[tuple[str, str, list[str]]] = []  # (title, paragraph, html blocks)

    # Every table is read (and its columns checked) before the report folder appears.
    ev, dips, beh, app, pr, rf, pc, ca = (
        _table(run_dir, name)
        for name in (EVALS_TABLE, DIPS_TABLE, BEHAVIOURS_TABLE, APPROPRIATENESS_TABLE,
                     PROBES_TABLE, REFUSAL_TABLE, PROBE_COMPARE_TABLE, CAUSAL_TABLE)
    )  # fmt: skip
    figs.mkdir(parents=True, exist_ok=True)
    order = man.get("eval_order") or list(labels)
    sections.append(_eval_section(ev, dips, labels, order, figs))
    if not beh.empty:
        p = plot_lines(beh, figs / "behaviours.png", facet="metric", title="Behaviours", ylabel="")
        sections.append(
            (
                "Behaviours per checkpoint",
                txt.behaviour_paragraph(beh),
                [_img(_rel(p, rep), "behaviour rates by checkpoint")],
            )
        )
    else:
        sections.append(
            ("Behaviours per checkpoint", "Tagging was not run in this experiment.", [])
        )
    if not app.empty:
        p = plot_lines(app, figs / "appropriateness.png", facet="metric", title="Appropriateness")
        sections.append(
            (
                "Appropriateness of backtracks",
                txt.appropriateness_paragraph(app),
                [_img(_rel(p, rep), "appropriateness by checkpoint")],
            )
        )
    if not pr.empty:
        # Selectivity over the surface baseline where the table has it: raw AUROC reads high
        # whenever surface features alone would.
        sel = (pr["metric"] == "selectivity").any()
        au = pr[(pr["metric"] == ("selectivity" if sel else "auroc")) & (pr["layer"] >= 0)].copy()
        au["layer"] = au["layer"].astype(int).map(lambda v: f"layer {v}")
        p = plot_lines(
            au,
            figs / "probe_auroc.png",
            hue="layer",
            facet="model",
            title="Dead-end probe selectivity over surface" if sel else "Dead-end probe AUROC",
            ylabel="selectivity (AUROC points)" if sel else "AUROC",
            band=False,
        )
        sections.append(
            (
                "Dead-end probe",
                txt.probe_paragraph(pr),
                [_img(_rel(p, rep), "dead-end probe AUROC by layer and checkpoint")],
            )
        )
        if not pc.empty:
            sections.append(
                (
                    "Strong vs weak probe, paired",
                    txt.compare_paragraph(pc),
                    [_df_html(txt.compare_rows(pc))],
                )
            )
        sections.append(("Causal check", txt.causal_paragraph(ca), _causal_blocks(ca)))
    else:
        sections.append(("Dead-end probe", "Probing was not run in this experiment.", []))
    if not rf.empty:
        p = plot_lines(
            rf, figs / "refusal.png", facet="metric", title="Refusal", ylabel="", band=False
        )
        sections.append(
            (
                "Refusal",
                txt.refusal_paragraph(rf),
                [_img(_rel(p, rep), "refusal rate, direction drift and AUROC by checkpoint")],
            )
        )
    else:
        sections.append(("Refusal", "The refusal analysis was not run in this experiment.", []))
    sections.append(_examples_section(run_dir))
    tables = {
        "evals": ev,
        "dips": dips,
        "behaviours": beh,
        "appropriateness": app,
        "probes": pr,
        "probe_compare": pc,
        "causal": ca,
        "refusal": rf,
    }
    found = fnd.findings(tables, labels, order)
    found, shipped = _shipped_dip(found, man, figs)
    if shipped is not None:
        sections.insert(1, shipped)
    sbs = fnd.side_by_side(tables, fnd.primary_eval(ev, order) if not ev.empty else None)

    title = f"sftlens report: {man.get('name', run_dir.name)}"
    head = _header(man)
    body = [f"<h1>{html.escape(title)}</h1>", head, *_findings_html(found, sbs, rep)]
    md = [f"# {title}", "", *(f"{_strip_tags(x)}\n" for x in head.split("</p>") if x), ""]
    md += _findings_md(found, sbs, rep)
    for name, para, blocks in sections:
        paras = "".join(f"<p>{html.escape(x)}</p>" for x in para.split("\n\n") if x)
        body.append(f"<h2>{html.escape(name)}</h2>{paras}")
        body.extend(blocks)
        md += [f"## {name}", "", para, ""]
        md += [f"![{name}]({_src(b)})" for b in blocks if b.startswith("<figure>")]
        md.append("")
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    write_text(rep / SUMMARY_MD, "\n".join(md).rstrip() + "\n")
    interrupt_point("report.write")
    write_text(rep / INDEX_HTML, page)


FINDINGS_ID = "findings"
VERDICT_COLOURS = {
    fnd.SEEN: "#d6f0d6",
    fnd.NOT_SEEN: "#f4f4f4",
    fnd.CONTRADICTED: "#f6d0d0",
    fnd.NOT_TESTED: "#ffffff",
}


def _findings_html(found: list[fnd.Finding], sbs: pd.DataFrame, rep: Path) -> list[str]:
    """The findings table (one row per claim) and the strong-vs-weak side-by-side table."""
    rows = []
    for f in found:
        link = (
            f'<a href="{html.escape(f.figure)}">figure</a>'
            if f.figure and (rep / f.figure).is_file()
            else ""
        )
        rows.append(
            f"<tr><td class='claim'>{html.escape(f.claim)}</td>"
            f"<td class='verdict' style='background:{VERDICT_COLOURS[f.verdict]}'>"
            f"{html.escape(f.verdict)}</td>"
            f"<td class='evidence'>{html.escape(f.evidence)}</td><td class='figure'>{link}</td></tr>"
        )
    out = [
        "<h2>Findings</h2><p>The paper's claims, each with this run's verdict. Numbers are at the "
        "last checkpoint unless a step is named; brackets are 95% bootstrap intervals over "
        "problems, and a verdict needs the intervals to separate.</p>",
        f"<table id='{FINDINGS_ID}'><thead><tr><th>claim</th><th>verdict</th><th>evidence</th>"
        f"<th>figure</th></tr></thead><tbody>{''.join(rows)}</tbody></table>",
    ]
    if not sbs.empty:
        out.append(
            "<p>Strong vs weak at the last checkpoint, side by side: the surface rows say how "
            "alike they write, the correctness rows how often it is right.</p>"
            + sbs.to_html(index=False, border=0, table_id="side-by-side")
        )
    return out


def _findings_md(found: list[fnd.Finding], sbs: pd.DataFrame, rep: Path) -> list[str]:
    md = ["## Findings", "", "| claim | verdict | evidence | figure |", "|---|---|---|---|"]
    for f in found:
        link = f"[figure]({f.figure})" if f.figure and (rep / f.figure).is_file() else ""
        md.append(f"| {f.claim} | **{f.verdict}** | {f.evidence.replace('|', '/')} | {link} |")
    if not sbs.empty:
        cols = list(sbs.columns)
        md += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for _, r in sbs.iterrows()]
    return [*md, ""]


def _shipped_dip(
    found: list[fnd.Finding], man: dict[str, Any], figs: Path
) -> tuple[list[fnd.Finding], tuple[str, str, list[str]] | None]:
    """When this run shows no dip, quote the spec's shipped result at another scale (its
    curves, the detector's verdict on them, a figure), labelled as shipped."""
    from sftlens.experiments._shipped import shipped_results
    from sftlens.experiments._tables import dip_table

    dip = found[0]
    if dip.verdict == fnd.SEEN or not man.get("name"):
        return found, None
    others = [r for r in shipped_results(man["name"]) if r.scale != man.get("scale")]
    if not others:
        return found, None
    res = others[0]
    labels = res.meta.get("eval_labels", {})
    theirs = fnd.dip_finding(res.evals, dip_table(res.evals), labels)
    rel = f"{FIGURES_DIR}/shipped_{res.scale}_accuracy.png"
    ev = res.evals.assign(eval_label=res.evals["eval"].map(lambda e: labels.get(e, e)))
    plot_lines(ev, figs.parent / rel, facet="eval_label", title=f"Accuracy, {res.scale} scale "
               "(shipped result)", ylabel="accuracy")  # fmt: skip
    where = f"`{res.command}`" + (f", seed {res.meta['seed']}" if "seed" in res.meta else "")
    if res.meta.get("measured"):
        where += f", measured {res.meta['measured']}"
    ev_text = theirs.evidence[:1].lower() + theirs.evidence[1:]
    text = f"The shipped {res.scale}-scale result ({where}) says {theirs.verdict}: {ev_text}"
    found = [dataclasses.replace(dip, evidence=f"{dip.evidence} {text}", figure=rel), *found[1:]]
    section = (
        f"Dip and recovery at the {res.scale} scale (shipped result)",
        f"This run cannot show the dip ({dip.evidence[:1].lower() + dip.evidence[1:]}) "
        f"{text} These curves are not from this run: they ship with sftlens "
        f"(configs/results/{res.name}.{res.scale}.evals.csv) and `{res.command}` reproduces them.",
        [_img(rel, f"accuracy per checkpoint at the {res.scale} scale (shipped)")],
    )
    return found, section


def _causal_blocks(ca: pd.DataFrame) -> list[str]:
    rows = txt.causal_rows(ca)
    return [_df_html(rows)] if not rows.empty else []


def _src(block: str) -> str:
    return block.split('src="', 1)[1].split('"', 1)[0]


def _rel(p: Path, base: Path) -> str:
    return p.relative_to(base).as_posix()


def _strip_tags(s: str) -> str:
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", s))


def _header(man: dict[str, Any]) -> str:
    pkgs = (man.get("environment") or {}).get("packages", {})
    vers = ", ".join(
        f"{k} {v}" for k, v in pkgs.items() if v and k in ("sftlens", "torch", "transformers")
    )
    secs = sum(float(s.get("seconds") or 0) for s in (man.get("stages") or {}).values())
    parts = [
        f"scale {man.get('scale', '?')}",
        f"seed {man.get('seed', '?')}",
        f"{len(man.get('stages') or {})} stages, {secs:.0f} s of stage time",
        vers,
    ]
    desc = man.get("description") or ""
    return (
        f"<p>{html.escape(desc)}</p>" if desc else ""
    ) + f"<p class='meta'>{html.escape(' · '.join(p for p in parts if p))}</p>"


def _eval_section(ev: pd.DataFrame, dips: pd.DataFrame, labels: dict, order: list, figs: Path):
    rep = figs.parent
    if ev.empty:
        return ("Accuracy and length per checkpoint", "No evaluation table.", [])
    ev = ev.copy()
    ev["eval_label"] = ev["eval"].map(lambda e: labels.get(e, e))
    paras, blocks = [], []
    flat: list[tuple[str, str, str]] = []
    for metric, what in (
        ("accuracy", "accuracy"),
        ("refusal_rate", "refusal rate"),
        ("length", "length in tokens"),
    ):
        sub = ev[ev["metric"] == metric]
        if sub.empty:
            continue
        p = plot_lines(
            sub,
            figs / f"eval_{metric}.png",
            facet="eval_label",
            title=what.capitalize(),
            ylabel=what,
        )
        blocks.append(_img(_rel(p, rep), f"{what} per checkpoint, by eval set"))
        if metric == "length":
            continue
        rank = {labels.get(e, e): i for i, e in enumerate(order)}
        groups = sorted(sub.groupby("eval_label", sort=False), key=lambda g: rank.get(g[0], 99))
        for e, es in groups:
            moving = []
            for model, c in es.groupby("model", sort=True):
                d = None
                if not dips.empty:
                    m = dips[
                        (dips["model"] == model)
                        & (dips["eval"] == c["eval"].iloc[0])
                        & (dips["metric"] == metric)
                    ]
                    d = m.iloc[0].to_dict() if not m.empty else None
                if txt.is_flat(metric, c) and not (d or {}).get("dip"):
                    # Flat curves are grouped into one sentence after the moving ones.
                    flat.append((model, f"{e} {what}", txt.fmt_value(metric, c["value"].mean())))
                    continue
                moving.append(txt.curve_sentence(model, f"{e} {what}", metric, c, txt.dip_words(d)))
            if moving:
                paras += ["\n\n", *moving]
                cmp = txt.final_comparison(es, f"{e} {what}", metric)
                if cmp:
                    paras.append(cmp)
    if flat:
        paras += ["\n\n", txt.flat_sentence(flat)]
    ln = ev[ev["metric"] == "length"]
    paras.append("\n\n")
    for model, c in ln.groupby("model", sort=True):
        c = c.groupby("step", as_index=False)["value"].mean()
        paras.append(
            txt.curve_sentence(model, "mean completion length (tokens, all eval sets)", "length", c)
        )
    text = " ".join(paras).replace(" \n\n ", "\n\n").strip()
    return ("Accuracy and length per checkpoint", text, blocks)


def _examples_section(run_dir: Path):
    p = run_dir / TABLES_DIR / EXAMPLES_FILE
    if not p.is_file():
        return ("Tagged traces", "No traces were tagged.", [])
    recs = list(read_jsonl(p))
    blocks = []
    n_spans = 0
    for r in recs:
        spans = r.get("spans") or []
        n_spans += len(spans)
        counts = json.dumps(r.get("counts") or {}, sort_keys=True)
        verdict = {True: "correct", False: "wrong", None: "unscored"}.get(
            r.get("correct"), "unscored"
        )
        blocks.append(
            f"<h3>{html.escape(str(r.get('model')))} · step {r.get('step')} · "
            f"{html.escape(str(r.get('eval')))} · {verdict}</h3>"
            f"<p class='meta'>{html.escape(str(r.get('prompt', ''))[:300])}</p>"
            f"<pre class='trace'>{_highlight(str(r.get('completion', '')), spans)}</pre>"
            f"<p class='meta'>counts: {html.escape(counts)}</p>"
        )
    legend = " ".join(
        f'<mark style="background:{c}">{html.escape(k)}</mark>' for k, c in LABEL_COLOURS.items()
    )
    para = (
        f"{len(recs)} traces shown across {len({(r.get('model'), r.get('step')) for r in recs})} "
        f"checkpoints, with {n_spans} tagged spans highlighted."
    )
    return ("Tagged traces", para, [f"<p>{legend}</p>", *blocks])
