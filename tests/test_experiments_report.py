"""The report: paragraphs generated from the numbers, figures with their CSVs, static HTML."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from sftlens.core import write_json, write_jsonl, write_parquet
from sftlens.experiments import _report_text as txt
from sftlens.experiments import write_report

CHROMIUM = "/usr/bin/chromium"


def _curve(values, steps=(0, 10, 40, 160)):
    return pd.DataFrame({"step": list(steps), "value": list(values)})


def test_curve_sentence_quotes_first_last_and_peak():
    s = txt.curve_sentence(
        "toy-strong", "in-domain accuracy", "accuracy", _curve([0.02, 0.2, 0.5, 0.41])
    )
    assert s == (
        "toy-strong's in-domain accuracy rose from 2% at step 0 to 41% at step 160 "
        "(peak 50% at step 40)."
    )
    s = txt.curve_sentence("w", "length in tokens", "length", _curve([300, 200, 120, 100]))
    assert "fell from 300 at step 0 to 100 at step 160" in s
    s = txt.curve_sentence("w", "AUROC", "auroc", _curve([0.5, 0.5, 0.51, 0.5]))
    assert "stayed near 0.50" in s


def test_sentences_change_with_the_numbers():
    a = txt.curve_sentence("m", "acc", "accuracy", _curve([0.1, 0.2, 0.3, 0.4]))
    b = txt.curve_sentence("m", "acc", "accuracy", _curve([0.4, 0.3, 0.2, 0.1]))
    assert a != b and "rose" in a and "fell" in b


def test_dip_words_and_final_comparison():
    assert txt.dip_words({"dip": False}) == "the detector finds no dip"
    w = txt.dip_words(
        {"dip": True, "metric": "accuracy", "depth": 0.12, "dip_step": 20, "recovered": True}
    )
    assert w == "the detector finds a dip of 12% at step 20, then recovery"
    df = pd.DataFrame(
        {"model": ["a", "a", "b", "b"], "step": [0, 9, 0, 9], "value": [0.0, 0.3, 0.0, 0.1]}
    )
    assert txt.final_comparison(df, "accuracy", "accuracy") == (
        "At the last checkpoint a leads on accuracy with 30% (then b 10%)."
    )


def _fake_run(run: Path) -> None:
    """A run folder with real tables in the formats the stages write."""
    rows = []
    for model, acc in (
        ("strong-cot", [0.02, 0.05, 0.3, 0.41]),
        ("weak-cot", [0.0, 0.01, 0.05, 0.08]),
    ):
        for step, a in zip((0, 10, 40, 160), acc, strict=True):
            for ev in ("in_domain", "cross_domain"):
                rows.append(
                    dict(model=model, base="toy", data="cot", step=step, eval=ev,
                         metric="accuracy", value=a, ci_low=max(0, a - 0.05), ci_high=a + 0.05, n=16)
                )  # fmt: skip
                rows.append(
                    dict(model=model, base="toy", data="cot", step=step, eval=ev,
                         metric="length", value=100 + step, ci_low=None, ci_high=None, n=16)
                )  # fmt: skip
    t = run / "tables"
    write_parquet(pd.DataFrame(rows), t / "evals.parquet")
    write_parquet(
        pd.DataFrame(
            [
                dict(model="strong-cot", eval="in_domain", metric="accuracy", dip=False,
                     dip_step=None, depth=None, recovered=None, verdict="no dip"),
                dict(model="weak-cot", eval="in_domain", metric="accuracy", dip=True,
                     dip_step=10.0, depth=0.04, recovered=True, verdict="dip"),
            ]
        ),
        t / "dips.parquet",
    )  # fmt: skip
    beh = [
        dict(model=m, base="toy", step=s, eval="in_domain", metric="backtracking per trace",
             value=v * s / 160, n=16)
        for m, v in (("strong-cot", 1.5), ("weak-cot", 0.3)) for s in (0, 10, 40, 160)
    ]  # fmt: skip
    write_parquet(pd.DataFrame(beh), t / "behaviours.parquet")
    pr = [
        dict(model="strong-cot", step=s, layer=lay, metric=m, value=v)
        for s in (0, 160) for lay in (0, 1, 2)
        for m, v in (("auroc", 0.6 + 0.1 * lay + (0.05 if s else 0)), ("control_auroc", 0.5))
    ]  # fmt: skip
    write_parquet(pd.DataFrame(pr), t / "probes.parquet")
    rf = [
        dict(model="strong-cot", step=s, metric=m, value=v)
        for s, r, c in ((0, 0.9, 1.0), (160, 0.4, 0.7))
        for m, v in (("refusal_rate", r), ("cosine_to_base", c), ("auroc", 0.97))
    ]  # fmt: skip
    write_parquet(pd.DataFrame(rf), t / "refusal.parquet")
    completion = "Try 7*3 = 21. That is not 22. Let me go back. Check: 4*5+2 = 22. Correct."
    write_jsonl(
        t / "examples.jsonl",
        [
            dict(model="strong-cot", step=160, eval="in_domain", prompt="Make 22 <b>", correct=True,
                 completion=completion, counts={"backtracking": 1},
                 spans=[{"start": completion.index("Let"), "end": completion.index("back") + 4,
                         "label": "backtracking"},
                        {"start": completion.index("Check"), "end": completion.index("Check") + 5,
                         "label": "verification"}])
        ],
    )  # fmt: skip
    write_json(
        run / "manifest.json",
        {"name": "lab", "scale": "tiny", "seed": 0, "stages": {},
         "eval_labels": {"in_domain": "in-domain Countdown", "cross_domain": "cross-domain"}},
    )  # fmt: skip


def test_report_paragraphs_come_from_the_tables(tmp_path):
    _fake_run(tmp_path)
    index = write_report(tmp_path)
    html = index.read_text()
    md = (tmp_path / "report" / "summary.md").read_text()
    assert (
        "strong-cot's in-domain Countdown accuracy rose from 2% at step 0 to 41% at step 160" in md
    )
    assert "the detector finds no dip" in md
    assert (
        "weak-cot's in-domain Countdown accuracy rose from 0% at step 0 to 8% at step 160; the detector finds a dip of 4% at step 10, then recovery"
        in md
    )
    assert "Backtracking per trace: strong-cot went from 0.00 at step 0 to 1.50 at step 160" in md
    assert "strong-cot shows the most, weak-cot the least (5.0x)" in md
    assert "best AUROC went from 0.80 (layer 2) at step 0 to 0.85 (layer 2) at step 160" in md
    assert "refusal rate on harmful prompts fell from 90% at step 0 to 40% at step 160" in md
    # Every image exists with its CSV, and the HTML references only existing files.
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len([s for s in srcs if s.endswith(".png")]) >= 5
    for s in srcs:
        assert (index.parent / s).is_file(), s
        if s.endswith(".png"):
            assert (index.parent / s).with_suffix(".csv").is_file()
            assert (index.parent / s).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Highlighted spans and escaped user text.
    assert '<mark style="background:#f4a3a3" title="backtracking">Let me go back' in html
    assert "Make 22 &lt;b&gt;" in html and "Make 22 <b>" not in html


def test_report_without_analyses_says_what_was_not_run(tmp_path):
    _fake_run(tmp_path)
    for name in ("probes", "refusal", "behaviours"):
        (tmp_path / "tables" / f"{name}.parquet").unlink()
    md = write_report(tmp_path).with_name("summary.md").read_text()
    assert "Probing was not run" in md and "refusal analysis was not run" in md
    assert "Tagging was not run" in md


def test_report_cli_regenerates_and_fails_cleanly_without_tables(run_cli, tmp_path):
    _fake_run(tmp_path)
    rc, out, err = run_cli("report", tmp_path)
    assert rc == 0 and "index.html" in out
    rc, out, err = run_cli("report", tmp_path / "nope")
    assert rc == 2 and "no tables/ folder" in err


def test_report_ctrl_c_mid_write_keeps_the_old_report_then_rerun_rewrites(
    run_cli, tmp_path, monkeypatch
):
    from sftlens.core import INTERRUPT_ENV

    _fake_run(tmp_path)
    write_report(tmp_path)
    rep = tmp_path / "report"
    before = {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()}
    assert set(before) == {"index.html", "summary.md"}
    # New numbers, then Ctrl-C between writing summary.md and index.html.
    refusal = tmp_path / "tables" / "refusal.parquet"
    refusal.unlink()
    monkeypatch.setenv(INTERRUPT_ENV, "report.write")
    rc, _, err = run_cli("report", tmp_path)
    assert rc == 130 and f"rerun the same command: sftlens report {tmp_path}" in err
    # The page and its summary still agree: both are the previous report's.
    assert {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    monkeypatch.delenv(INTERRUPT_ENV)
    rc, _, err = run_cli("report", tmp_path)
    assert rc == 0, err
    assert "refusal analysis was not run" in (rep / "summary.md").read_text()
    assert "refusal analysis was not run" in (rep / "index.html").read_text()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    _fake_run(tmp_path)
    index = write_report(tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            index.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000
    # No broken images: dump the DOM and check every <img> finished loading with a size.
    js = tmp_path / "check.html"
    js.write_text(
        index.read_text().replace(
            "</body>",
            "<script>window.onload=()=>{const bad=[...document.images].filter("
            "i=>!i.complete||i.naturalWidth===0).length;document.title='broken='+bad;};"
            "</script></body>",
        )
    )
    shutil.copytree(index.parent / "figures", tmp_path / "figures", dirs_exist_ok=True)
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            js.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    ).stdout
    assert "<title>broken=0</title>" in dom
    # The findings table opens the rendered page: a header and one row per claim.
    table = dom.split('id="findings"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == 6 and table.count('class="verdict"') == 5
    assert dom.index('id="findings"') < dom.index("Accuracy and length per checkpoint")
