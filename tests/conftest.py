"""Shared test fixtures: fixed seeds, a CLI runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

import os

import pytest

# Keep torch to the cores CI has, and avoid tokenizers' fork warnings in tests.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Robustness variants (benchmarks/fixture_variants.py): every fixture that builds or trains a
# model adds this to its seed, and "1" here turns on torch's deterministic algorithms. A test
# that only passes for one seed, or one floating-point path, fails under some variant.
SEED_SHIFT_ENV = "SFTLENS_TEST_SEED_SHIFT"
DETERMINISTIC_ENV = "SFTLENS_TEST_DETERMINISTIC"


def fixture_seed(base: int) -> int:
    """The seed a model-building fixture uses: `base` plus the variant's shift (0 by default)."""
    return base + int(os.environ.get(SEED_SHIFT_ENV, "0"))


def pytest_configure(config):
    from sftlens.core import enable_ctrl_c

    # Tests that interrupt in-process need SIGINT to raise, even when the suite itself runs as
    # a background job (SIGINT inherited ignored); subprocess tests set up that case on purpose.
    enable_ctrl_c()
    if os.environ.get(DETERMINISTIC_ENV) == "1":
        import torch

        torch.use_deterministic_algorithms(True)


@pytest.fixture(autouse=True)
def _fixed_seeds():
    from sftlens.core import seed_everything

    seed_everything(fixture_seed(1234))
    yield


@pytest.fixture
def run_cli(capsys):
    """Call the real CLI entry point in-process: run_cli("data", "countdown", ...) -> (rc, out, err)."""
    from sftlens.cli import main

    def _run(*argv: str):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


TINY_CORPUS = [
    "Using the numbers [3, 5, 7], make 22. <answer>(7-3)*5+2</answer>",
    "Try 7*3 = 21. That is not 22. Let me go back and try another way.",
    "Check: 4*5 = 20, 20+2 = 22. That matches the target.",
    "How do I bake bread? Mix flour, water and yeast, then bake.",
    "I can't help with that request.",
    "route from A to F: A-B, B-D, D-F. <answer>A-B-D-F</answer>",
] * 20


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The toy tokenizer trained on a small corpus (real BPE, real chat template)."""
    from sftlens.tasks import build_tokenizer

    return build_tokenizer(TINY_CORPUS, vocab_size=300)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """The zoo's toy-tiny (a real 2-layer Llama, random weights) saved as a checkpoint dir
    (model + tokenizer + trainer_state.json), for tests that need a model without any download."""
    from sftlens.core import TRAINER_STATE, write_json
    from sftlens.train import build_toy_model

    tok = tiny_tokenizer
    model = build_toy_model("toy-tiny", tok, seed=fixture_seed(0))
    d = tmp_path_factory.mktemp("tiny") / "checkpoints" / "step-000000"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    write_json(
        d / TRAINER_STATE, {"step": 0, "epoch": 0.0, "tokens_seen": 0, "lr": 0.0, "loss": None}
    )
    return d
