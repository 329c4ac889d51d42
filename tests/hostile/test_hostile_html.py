"""``tag-html`` escapes every string it writes: text, ids, metadata, span labels, counts."""

from __future__ import annotations

import json
from html.parser import HTMLParser

PAYLOADS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", '" onmouseover="x']


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


def test_tag_html_escapes_every_string(tmp_path, run_cli):
    text = " ".join(PAYLOADS) + " Wait, that is wrong."
    traces = tmp_path / "traces.jsonl"
    trace = {"id": PAYLOADS[0], "completion": text, "model": PAYLOADS[1], "task": PAYLOADS[2],
             "checkpoint": {"step": 3}, "score": {"correct": True}}  # fmt: skip
    traces.write_text(json.dumps(trace) + "\n", encoding="utf-8")
    spans = [
        {"start": 0, "end": 10, "label": PAYLOADS[0], "rule": PAYLOADS[1], "text": "x"},
        {"start": 26, "end": 40, "label": PAYLOADS[2], "rule": "r", "text": "y"},
    ]
    tags = tmp_path / "tags.jsonl"
    tag = {"id": PAYLOADS[0], "ruleset": "x", "spans": spans, "counts": {PAYLOADS[1]: 1},
           "verbosity": {}}  # fmt: skip
    tags.write_text(json.dumps(tag) + "\n", encoding="utf-8")
    out = tmp_path / "page.html"
    rc, _, err = run_cli("tag-html", tags, "--traces", traces, "--out", out)
    assert rc == 0, err
    page = out.read_text(encoding="utf-8")
    parsed = _Elements()
    parsed.feed(page)
    assert not parsed.tags & {"script", "img", "svg", "iframe"}, parsed.tags
    assert not {a for a in parsed.attrs if a.startswith("on")}, parsed.attrs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text, not run
