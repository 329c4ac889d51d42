"""What a user's log shows: no library chatter, and no progress-bar flood when not on a terminal."""

from __future__ import annotations

import json

import pytest

from sftlens.train import TrainConfig, train


def _records(n: int = 16) -> list[dict]:
    return [
        {"id": f"r{i}", "prompt": f"Add {i} and 2.", "response": f"{i}+2 = {i + 2}."}
        for i in range(n)
    ]


@pytest.mark.integration
def test_training_log_is_one_line_per_tenth_when_not_a_terminal(tiny_model_dir, tmp_path, capfd):
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    cfg = TrainConfig.from_dict(
        {
            "objective": "sft",
            "model": str(tiny_model_dir),
            "data": str(data),
            "out_dir": str(tmp_path / "run"),
            "max_steps": 30,
            "batch_size": 4,
            "max_length": 32,
            "grid": {"kind": "list", "steps": [30]},
            "progress": True,
        }
    )
    train(cfg)
    err = capfd.readouterr().err
    assert "\r" not in err  # no bar redrawn in place
    lines = [ln for ln in err.splitlines() if ": step " in ln]
    assert len(lines) == 10
    assert lines[-1].startswith("sft run: step 30/30  loss ")


def test_loading_a_lens_prints_nothing(tiny_model_dir, capfd):
    from sftlens.probes import load_lens

    load_lens(tiny_model_dir)
    out = capfd.readouterr().out
    assert "Moving model" not in out and "Changing model dtype" not in out
