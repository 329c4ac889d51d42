"""A model judge of reasoning behaviours: the Tags contract from a local HF causal LM.

Optional, for GPU users who want a judge's labels beside the rules' (``sftlens tag --judge MODEL``,
then ``sftlens tag-eval --tags``); the default tagger never needs it. Imports torch and transformers
on first use only.
"""

from __future__ import annotations

from sftlens.judge._judge import ANSWERS, PROMPT, Judge, judge_file

__all__ = ["ANSWERS", "PROMPT", "Judge", "judge_file"]
