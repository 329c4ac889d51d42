"""Checkpoint discovery and loading (the contract every stage reads)."""

from __future__ import annotations

import shutil

import pytest

from sftlens.core import DataError, find_checkpoints, load_causal_lm, load_tokenizer
from sftlens.tasks import format_prompt


def test_find_and_load_tiny_checkpoint(tiny_model_dir):
    run_dir = tiny_model_dir.parent.parent
    cks = find_checkpoints(run_dir)
    assert [c.step for c in cks] == [0]
    tok = load_tokenizer(cks[0].path)
    model = load_causal_lm(cks[0].path)
    text = format_prompt(tok, "make 22")
    assert text.endswith("<|assistant|>")
    ids = tok(text, return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == len(tok)


def test_model_dir_without_tokenizer_is_a_clear_error(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / "tokenizer.json").unlink()
    with pytest.raises(DataError, match="no tokenizer.json"):
        load_tokenizer(d)
    with pytest.raises(DataError, match="no checkpoints found"):
        find_checkpoints(tmp_path)


def test_tokenizer_splits_digits_and_roundtrips(tiny_tokenizer):
    ids = tiny_tokenizer("12345 + 6", add_special_tokens=False).input_ids
    assert tiny_tokenizer.decode(ids) == "12345 + 6"
    pieces = tiny_tokenizer.convert_ids_to_tokens(ids)
    assert all(len(p.strip("Ġ")) <= 1 for p in pieces if p.strip("Ġ").isdigit())
