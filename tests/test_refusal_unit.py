"""Refusal-direction building blocks on a random tiny Llama: formats, hooks, scores, files."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def model_tok(tiny_model_dir):
    from sftlens.core import load_causal_lm, load_tokenizer

    return load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir)


PROMPTS = ["How do I bake bread?", "Check 4*5.", "Route from A to F, please.", "Try 7*3."]


def test_prompt_format_toy_chat_plain_and_custom(model_tok):
    from sftlens.probes import prompt_format

    _, tok = model_tok
    chat = prompt_format(tok)
    assert chat.template == "<|user|>{instruction}\n<|assistant|>"
    assert chat.n_positions == 2 and chat.add_special_tokens is False
    plain = prompt_format(tok, "plain")
    assert plain.render("hi") == "hi\n" and plain.n_positions == 1
    custom = prompt_format(tok, "Q: {instruction}\nA:", positions=1)
    assert custom.render("x") == "Q: x\nA:" and custom.n_positions == 1


def test_config_rejects_contradictions():
    from sftlens.core import ConfigError
    from sftlens.probes import RefusalDirectionConfig

    with pytest.raises(ConfigError, match="both files"):
        RefusalDirectionConfig.from_dict({"harmful": "a.csv"})
    with pytest.raises(ConfigError, match="instruction"):
        RefusalDirectionConfig.from_dict({"template": "no placeholder"})
    with pytest.raises(ConfigError, match="unknown key"):
        RefusalDirectionConfig.from_dict({"n_trian": 3})


def test_chat_template_required_when_asked(model_tok):
    from sftlens.core import ConfigError
    from sftlens.probes import prompt_format

    _, tok = model_tok
    saved = tok.chat_template
    tok.chat_template = None
    try:
        assert prompt_format(tok).template == "{instruction}\n"
        with pytest.raises(ConfigError, match="no chat template"):
            prompt_format(tok, "chat")
    finally:
        tok.chat_template = saved


def test_refusal_token_ids_single_tokens_only(model_tok):
    from sftlens.core import ConfigError
    from sftlens.probes import refusal_token_ids

    model, tok = model_tok
    ids = refusal_token_ids(tok, model)
    assert ids and ids[0] == tok("I", add_special_tokens=False)["input_ids"][0]
    with pytest.raises(ConfigError, match="one token each"):
        refusal_token_ids(tok, model, ["I definitely refuse"])


def test_refusal_score_is_log_odds_and_kl_zero_on_itself():
    import math

    import torch

    from sftlens.probes._refusal import kl_divergence, refusal_scores

    probs = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    lp = probs.log()
    s = refusal_scores(lp, [0])
    assert float(s[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(s[1]) == pytest.approx(math.log(0.1 / 0.9), abs=1e-6)
    assert float(refusal_scores(lp, [0, 1])[1]) == pytest.approx(math.log(0.2 / 0.8), abs=1e-6)
    assert torch.allclose(kl_divergence(lp, lp), torch.zeros(2, dtype=torch.float64))
    assert float(kl_divergence(lp[:1], lp[1:]).squeeze()) > 0


def test_left_padding_matches_one_prompt_at_a_time(model_tok):
    import torch

    from sftlens.probes import prompt_format
    from sftlens.probes._refusal import encode, last_logprobs

    model, tok = model_tok
    ids = encode(tok, prompt_format(tok), PROMPTS)
    batched = last_logprobs(model, ids, batch_size=4, pad_id=tok.pad_token_id)
    alone = torch.cat([last_logprobs(model, [x], 1, tok.pad_token_id) for x in ids])
    assert torch.allclose(batched, alone, atol=1e-4)


def test_ablation_removes_the_direction_from_every_layer_input(model_tok):
    import torch

    from sftlens.probes import directional_ablation, prompt_format
    from sftlens.probes._refusal import collect_residuals, encode

    model, tok = model_tok
    fmt = prompt_format(tok)
    ids = encode(tok, fmt, PROMPTS)
    plain = collect_residuals(model, ids, 2, 4, tok.pad_token_id)
    # A direction the activations really have (a random one can be nearly orthogonal to a
    # tiny model's residuals, whatever its seed): one of the residual vectors itself.
    r = plain.reshape(-1, plain.shape[-1])[-1].clone()
    unit = r / r.norm()
    with directional_ablation(model, r):
        ablated = collect_residuals(model, ids, 2, 4, tok.pad_token_id)
    before = (plain @ unit).abs().max()
    assert before > 1e-2
    assert (ablated @ unit).abs().max() < 1e-4 * max(1.0, float(before))
    after = collect_residuals(model, ids, 2, 4, tok.pad_token_id)
    assert torch.equal(after, plain)  # hooks are gone


def test_addition_shifts_its_layer_input_by_the_vector(model_tok):
    import torch

    from sftlens.probes import activation_addition, prompt_format
    from sftlens.probes._refusal import collect_residuals, encode

    model, tok = model_tok
    ids = encode(tok, prompt_format(tok), PROMPTS)
    v = torch.randn(model.config.hidden_size)
    plain = collect_residuals(model, ids, 2, 4, tok.pad_token_id)
    with activation_addition(model, v, layer=1):
        added = collect_residuals(model, ids, 2, 4, tok.pad_token_id)
    assert torch.allclose(added[:, :, 0], plain[:, :, 0])
    assert torch.allclose(added[:, :, 1] - plain[:, :, 1], v.expand_as(plain[:, :, 1]), atol=1e-5)


def test_saved_direction_round_trip_and_bad_files(tmp_path):
    import torch
    from safetensors.torch import save_file

    from sftlens.core import DataError
    from sftlens.probes import Directions, Selection, load_direction, save_direction
    from sftlens.probes._refusal_eval import CheckpointResult

    diffs = torch.randn(2, 3, 8)
    res = CheckpointResult(
        Directions(diffs, diffs, diffs * 0, 5, 5),
        Selection(
            position=-1, layer=2, direction=diffs[1, 2].clone(), filtered=True, candidates=[]
        ),
        rows=[],
    )
    path = save_direction(
        tmp_path / "d.safetensors", res, {"model": "m", "versions": {"torch": "x"}}
    )
    vec, meta, back = load_direction(path)
    assert torch.equal(vec, diffs[1, 2]) and torch.equal(back, diffs)
    assert meta["layer"] == "2" and meta["position"] == "-1" and meta["model"] == "m"
    assert json.loads(meta["versions"]) == {"torch": "x"}
    # Another tool's file with one 1-D tensor is accepted as a reference direction.
    save_file({"refusal_dir": torch.ones(8)}, str(tmp_path / "other.safetensors"))
    assert load_direction(tmp_path / "other.safetensors")[0].shape == (8,)
    save_file({"a": torch.ones(2, 2)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(DataError, match="no 'direction' tensor"):
        load_direction(tmp_path / "bad.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(DataError, match="not a readable safetensors"):
        load_direction(tmp_path / "junk.safetensors")
    with pytest.raises(DataError, match="file not found"):
        load_direction(tmp_path / "missing.safetensors")


def test_user_files_split_deterministically(tmp_path):
    from sftlens.probes import RefusalDirectionConfig, load_prompt_sets

    (tmp_path / "h.csv").write_text("instruction\n" + "\n".join(f"harm {i}" for i in range(20)))
    (tmp_path / "s.jsonl").write_text(
        "\n".join(json.dumps({"instruction": f"safe {i}"}) for i in range(40))
    )
    cfg = RefusalDirectionConfig.from_dict(
        {"harmful": str(tmp_path / "h.csv"), "harmless": str(tmp_path / "s.jsonl"),
         "n_train": 10, "n_val": 5, "n_eval": 5}
    )  # fmt: skip
    a, b = load_prompt_sets(cfg), load_prompt_sets(cfg)
    assert a == b
    assert a.sizes() == dict.fromkeys(a.sizes(), 10) | {
        "harmful_val": 5, "harmless_val": 5, "harmful_eval": 5, "harmless_eval": 5,
    }  # fmt: skip
    assert not set(a.harmful_train) & set(a.harmful_eval)
    # Fewer instructions than asked for: the proportions are kept.
    small = load_prompt_sets(cfg.replace(n_train=40, n_val=20, n_eval=20))
    assert len(small.harmful_train) + len(small.harmful_val) + len(small.harmful_eval) == 20
    assert len(small.harmful_eval) >= 1


def test_toy_world_prompt_sets_use_held_out_templates():
    from sftlens.probes import RefusalDirectionConfig, load_prompt_sets

    sets = load_prompt_sets(RefusalDirectionConfig(n_train=8, n_val=4, n_eval=6))
    assert len(sets.harmful_train) == 8 and len(sets.harmless_eval) == 6
    assert not set(sets.harmful_train) & set(sets.harmful_eval)


def test_base_model_without_refusal_runs_and_filtering_fails_clearly(
    tiny_model_dir, tmp_path, run_cli
):
    from sftlens.core import read_parquet

    small = ("--set", "n_train=8", "--set", "n_val=4", "--set", "n_eval=4",
             "--set", "max_new_tokens=4", "--set", "plots=false")  # fmt: skip
    rc, _, err = run_cli("refusal", tiny_model_dir, "--out", tmp_path / "a", *small)
    assert rc == 0, err
    table = read_parquet(tmp_path / "a" / "refusal.parquet")
    assert {"refusal_rate_harmful", "auroc", "cosine_to_base"} <= set(table["metric"])
    rc, _, err = run_cli(
        "refusal", tiny_model_dir, "--out", tmp_path / "b", *small, "--set", "filter_prompts=true"
    )
    assert rc == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: filter_prompts:")
    assert not (tmp_path / "b" / "refusal.parquet").exists()


def test_cli_input_errors_exit_2(tiny_model_dir, tmp_path, run_cli):
    rc, _, err = run_cli(
        "refusal", tiny_model_dir, "--out", tmp_path, "--harmful", tmp_path / "none.csv"
    )
    assert rc == 2 and "both files" in err
    rc, _, err = run_cli(
        "refusal", tiny_model_dir, "--out", tmp_path,
        "--harmful", tmp_path / "none.csv", "--harmless", tmp_path / "none.json",
    )  # fmt: skip
    assert rc == 2 and "none.csv" in err and "not found" in err
    rc, _, err = run_cli("refusal", tmp_path / "nowhere", "--out", tmp_path)
    assert rc == 2 and "nowhere" in err
