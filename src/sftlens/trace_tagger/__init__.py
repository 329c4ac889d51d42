"""Tag reasoning behaviours in any text with deterministic spaCy rules, optionally refined by a
learned layer fitted to a researcher's own labels (`fit_calibration`, ``sftlens tag-fit``).

Spans (char offsets, the rule that fired, the sentence index) for ``backtracking``,
``verification``, ``subgoal_setting``, ``backward_chaining`` and ``hedging``; verbosity
metrics per trace; per-checkpoint tables with bootstrap intervals; an HTML view.

Example:
    >>> from sftlens.trace_tagger import Tagger
    >>> Tagger().tag("Wait, that's not right.")["counts"]["backtracking"]
    1

Names are imported on first use, so ``sftlens --help`` does not load spaCy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sftlens.trace_tagger._rules import LABELS
from sftlens.trace_tagger._ruleset import RULESET_ID

_LAZY = {
    "Calibration": "_calibration",
    "fit_calibration": "_fit",
    "Tagger": "_tagger",
    "verbosity": "_tagger",
    "tag_file": "_batch",
    "read_tags": "_batch",
    "tag_table": "_aggregate",
    "trace_table": "_aggregate",
    "render_html": "_html",
    "write_html": "_html",
}

if TYPE_CHECKING:
    from sftlens.trace_tagger._aggregate import tag_table, trace_table
    from sftlens.trace_tagger._batch import read_tags, tag_file
    from sftlens.trace_tagger._calibration import Calibration
    from sftlens.trace_tagger._fit import fit_calibration
    from sftlens.trace_tagger._html import render_html, write_html
    from sftlens.trace_tagger._tagger import Tagger, verbosity


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"sftlens.trace_tagger.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sftlens.trace_tagger' has no attribute {name!r}")


__all__ = [
    "Calibration",
    "LABELS",
    "RULESET_ID",
    "Tagger",
    "read_tags",
    "fit_calibration",
    "render_html",
    "tag_file",
    "tag_table",
    "trace_table",
    "verbosity",
    "write_html",
]
