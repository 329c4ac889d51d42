"""`generate`, `refusal` and the probe verbs on tiny random models of each architecture family.

The full matrix is slow; the default run keeps one architecture per verb.
"""

from __future__ import annotations

import pytest

from tiny_archs import ARCHS, save_tiny

ALL = list(ARCHS)


def _matrix(default: str) -> list:
    return [a if a == default else pytest.param(a, marks=pytest.mark.slow) for a in ALL]


@pytest.fixture(scope="module")
def arch_dirs(tmp_path_factory, tiny_tokenizer):
    made: dict[str, object] = {}

    def get(arch: str):
        if arch not in made:
            made[arch] = save_tiny(arch, tmp_path_factory.mktemp(arch) / arch, tiny_tokenizer)
        return made[arch]

    return get


MARKERS = {
    "qwen3": "<|im_start|>assistant\n",
    "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "gemma2": "<start_of_turn>model\n",
    "gemma3": "<start_of_turn>model\n",
    "olmo2": "<|assistant|>\n",
    "mistral": " [/INST]",
    "phi3": "<|assistant|>\n",
    "gpt2": "\n",
}


@pytest.mark.parametrize("arch", _matrix("qwen3"))
def test_generate(arch, arch_dirs, tmp_path, run_cli):
    from sftlens.core import read_jsonl

    d = arch_dirs(arch)
    rc, _o, err = run_cli(
        "generate", "-m", d, "-e", "countdown", "--eval-n", "2", "--n", "1",
        "--max-new-tokens", "4", "-o", tmp_path / "g",
    )  # fmt: skip
    assert rc == 0, err
    traces = list(read_jsonl(tmp_path / "g" / "traces.jsonl"))
    assert len(traces) == 2
    assert all(t["input_text"].endswith(MARKERS[arch]) for t in traces)
    assert all(1 <= t["n_tokens"] <= 4 for t in traces)


def test_qwen3_template_thinks_unless_told_not_to(arch_dirs):
    from sftlens.core import load_tokenizer

    tok = load_tokenizer(arch_dirs("qwen3"))
    msgs = [{"role": "user", "content": "2+2?"}]
    on = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    off = tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert on == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert off == on + "<think>\n\n</think>\n\n"
    done = msgs + [{"role": "assistant", "content": "<think>\n2+2=4\n</think>\n\n4"}]
    text = tok.apply_chat_template(done, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n<think>\n2+2=4\n</think>\n\n4<|im_end|>\n")


@pytest.mark.parametrize("arch", _matrix("llama3"))
def test_refusal(arch, arch_dirs, tmp_path, run_cli):
    from sftlens.core import read_parquet

    rc, _o, err = run_cli(
        "refusal", arch_dirs(arch), "--out", tmp_path / "r", "--set", "n_train=4",
        "--set", "n_val=4", "--set", "n_eval=4", "--set", "max_new_tokens=2",
        "--set", "plots=false",
    )  # fmt: skip
    assert rc == 0, err
    t = read_parquet(tmp_path / "r" / "refusal.parquet")
    assert {"cosine_to_base", "auroc", "refusal_rate_harmful"} <= set(t["metric"])


@pytest.mark.parametrize("arch", _matrix("gemma3"))
def test_probe_verbs(arch, arch_dirs, tmp_path, run_cli):
    d = arch_dirs(arch)
    out = tmp_path / "p"
    rc, _o, err = run_cli(
        "probe", "dead-end", "-m", f"m={d}", "-o", out, "--n-problems", "6",
        "--set", "n_splits=2",
    )  # fmt: skip
    assert rc == 0, err
    rc, _o, err = run_cli("probe", "drift", "-m", f"m={d}", "-o", out, "--n-problems", "3")
    assert rc == 0, err
    rc, _o, err = run_cli(
        "data", "countdown", "--n", "3", "--style", "cot", "--out", tmp_path / "cd.jsonl"
    )
    assert rc == 0, err
    rc, _o, err = run_cli("probe", "cache", d, "-d", tmp_path / "cd.jsonl", "-o", tmp_path / "c")
    assert rc == 0, err
    dirs = next(out.glob("m/*/directions.safetensors"))
    rc, _o, err = run_cli(
        "probe", "steer", d, "--directions", dirs, "--layer", "1", "--alphas", "0,1",
        "--n-problems", "2", "--max-new-tokens", "3", "-o", tmp_path / "steer.parquet",
    )  # fmt: skip
    assert rc == 0, err


def test_inputs_longer_than_the_context_never_crash(tiny_tokenizer, tmp_path, run_cli):
    """GPT-2 with 48 positions: prompts and traces longer than that are cut on purpose and
    counted (probes) or end with finish_reason "length" (generate), never an IndexError."""
    from sftlens.core import read_jsonl, write_jsonl

    d = save_tiny("gpt2", tmp_path / "gpt2", tiny_tokenizer, n_positions=48)
    rc, _o, err = run_cli(
        "data", "countdown", "--n", "3", "--style", "cot", "--out", tmp_path / "cd.jsonl"
    )
    assert rc == 0, err
    probs = list(read_jsonl(tmp_path / "cd.jsonl"))
    long = [{**p, "prompt": (p["prompt"] + " ") * 4} for p in probs[:2]] + [probs[2]]
    write_jsonl(tmp_path / "long.jsonl", long)
    rc, _o, err = run_cli(
        "generate", "-m", d, "-e", f"countdown@{tmp_path / 'long.jsonl'}", "--n", "1",
        "--max-new-tokens", "64", "-o", tmp_path / "g",
    )  # fmt: skip
    assert rc == 0, err
    traces = {t["problem_id"]: t for t in read_jsonl(tmp_path / "g" / "traces.jsonl")}
    assert len(traces) == 3 and all(t["finish_reason"] == "length" for t in traces.values())
    assert traces[probs[0]["id"]]["n_tokens"] == 0
    rc, out, err = run_cli("probe", "cache", d, "-d", tmp_path / "cd.jsonl", "-o", tmp_path / "c")
    assert rc == 0, err
    assert "truncated 3 traces to the model's 48-token context" in err
