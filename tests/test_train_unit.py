"""Trainer building blocks: config, schedules, grid, masking, packing, batching, checkpoints."""

from __future__ import annotations

import pytest
import torch

from sftlens.core import ConfigError
from sftlens.train import (
    IGNORE,
    TOY_MODELS,
    TrainConfig,
    build_toy_model,
    checkpoint_grid,
    collate,
    epoch_batches,
    fixed_budget_schedules,
    lr_at,
    pack,
    tokenize_sft,
)
from sftlens.train._data import Unit


def _cfg(**kw):
    base = {"data": "d.jsonl", "max_steps": 10}
    base.update(kw)
    return TrainConfig.from_dict(base)


# ---- config ------------------------------------------------------------------------------


def test_config_overrides_nested_keys(tmp_path):
    y = tmp_path / "run.yaml"
    y.write_text("data: d.jsonl\nmax_steps: 5\nschedule: {kind: linear}\n")
    cfg = TrainConfig.load(
        y, overrides=["lr=3e-4", "schedule.warmup_frac=0.1", "grid.kind=every", "grid.every=2"]
    )
    assert cfg.lr == pytest.approx(3e-4)
    assert cfg.schedule.kind == "linear" and cfg.schedule.warmup_frac == pytest.approx(0.1)
    assert cfg.grid.every == 2
    cfg.save(tmp_path / "saved.yaml")
    assert TrainConfig.load(tmp_path / "saved.yaml") == cfg


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"lrr": 1e-3}, "unknown key 'lrr'"),
        ({"schedule": {"warmup": 0.1}}, "schedule.warmup"),
        ({"epochs": 2}, "exactly one of max_steps and epochs"),
        ({"max_steps": None}, "exactly one of max_steps and epochs"),
        ({"grid": {"kind": "list"}}, "grid.steps"),
        ({"grid": {"kind": "list", "steps": [5, 20]}}, "outside 0..max_steps=10"),
        ({"grid": {"kind": "every"}}, "grid.every"),
        ({"schedule": {"kind": "exp"}}, "'constant', 'cosine', 'linear'"),
        ({"trackers": ["neptune"]}, "trackers"),
        ({"batch_size": 0}, "batch_size"),
        ({"data": ""}, "data"),
    ],
)
def test_config_rejects_bad_values_by_name(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        _cfg(**overrides)


# ---- schedules and grid --------------------------------------------------------------------


def test_checkpoint_grid_has_exactly_the_asked_steps():
    assert checkpoint_grid("log2", 100, start=10) == [0, 10, 20, 40, 80, 100]
    assert checkpoint_grid("log2", 80, start=10) == [0, 10, 20, 40, 80]
    assert checkpoint_grid("every", 10, every=3) == [0, 3, 6, 9, 10]
    assert checkpoint_grid("list", 50, steps=[7, 3, 50]) == [0, 3, 7, 50]
    with pytest.raises(ConfigError, match="outside"):
        checkpoint_grid("list", 5, steps=[6])


def test_lr_schedules_warmup_and_decay():
    total = 100
    assert lr_at(0, total, 1.0, "cosine", warmup_frac=0.1) == pytest.approx(0.1)
    assert lr_at(9, total, 1.0, "cosine", warmup_frac=0.1) == pytest.approx(1.0)
    assert lr_at(10, total, 1.0, "cosine", warmup_frac=0.1) == pytest.approx(1.0)
    assert lr_at(99, total, 1.0, "cosine", 0.1, min_lr_frac=0.1) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(55, total, 1.0, "linear", 0.1) == pytest.approx(0.5)
    assert lr_at(77, total, 2.0, "constant", 0.1) == 2.0
    cos = [lr_at(s, total, 1.0, "cosine", 0.1) for s in range(10, total)]
    assert all(a >= b for a, b in zip(cos, cos[1:], strict=False))


def test_fixed_budget_same_steps_different_repetition():
    cfg = _cfg(batch_size=4, grad_accum=2, out_dir="runs/fb")
    plans = fixed_budget_schedules(cfg, steps=64, epochs=(1, 4, 16))
    assert list(plans) == ["ep01-n512", "ep04-n128", "ep16-n32"]
    for name, c in plans.items():
        assert c.max_steps == 64 and c.epochs is None and c.out_dir == f"runs/fb/{name}"
        # every config sees the same number of examples: subset x epochs = steps x batch
        k = int(name[2:4])
        assert c.subset_size * k == 64 * 8


# ---- data: masking, packing, batching ------------------------------------------------------


def test_prompt_tokens_carry_no_loss(tiny_tokenizer):
    tok = tiny_tokenizer
    prompt, response = "Using the numbers [3, 5, 7], make 22.", "(7-3)*5+2 = 22"
    ids, labels = tokenize_sft(tok, prompt, response)
    n_prompt = sum(1 for x in labels if x == IGNORE)
    assert n_prompt > 5
    # everything before the response is masked, everything after is a target
    assert all(x == IGNORE for x in labels[:n_prompt])
    assert all(x != IGNORE for x in labels[n_prompt:])
    assert tok.decode(ids[:n_prompt]) == f"<|user|>{prompt}\n<|assistant|>"
    assert tok.decode([x for x in labels if x != IGNORE]) == response + tok.eos_token
    # and the collated batch counts exactly those targets
    batch = collate([Unit(ids, [IGNORE] + labels[1:])], tok.pad_token_id)
    assert batch["n_loss"] == len(ids) - n_prompt


def test_pack_rows_fit_and_keep_every_example():
    lens = [5, 9, 3, 7, 2, 8, 4]
    seqs = [([1000 * (i + 1) + t for t in range(n)], [1] * n) for i, n in enumerate(lens)]
    rows = pack(seqs, max_length=12)
    assert all(len(r) <= 12 for r in rows)
    assert len(rows) == 4  # 38 tokens in rows of 12: best fit needs 4
    # every example appears once, whole, and its positions restart at 0
    found = []
    for r in rows:
        starts = [i for i, p in enumerate(r.positions) if p == 0] + [len(r)]
        for a, b in zip(starts, starts[1:], strict=False):
            found.append(r.ids[a:b])
            assert r.positions[a:b] == list(range(b - a))
    assert sorted(found) == sorted(s[0] for s in seqs)


def test_epoch_batches_split_is_independent_of_processes():
    lengths = [((i * 37) % 50) + 1 for i in range(64)]
    steps = epoch_batches(lengths, epoch=0, seed=3, global_batch=16, micro_batch=4)
    assert len(steps) == 4 and all(len(s) == 4 and all(len(m) == 4 for m in s) for s in steps)
    flat = [i for s in steps for m in s for i in m]
    assert sorted(flat) == list(range(64))
    # per_epoch reshuffles; fixed keeps one order
    assert epoch_batches(lengths, 1, 3, 16, 4) != steps
    assert epoch_batches(lengths, 1, 3, 16, 4, shuffle="fixed") == epoch_batches(
        lengths, 0, 3, 16, 4, shuffle="fixed"
    )

    # length grouping pads less than a random split
    def padding(st):
        return sum(
            max(lengths[i] for i in m) * len(m) - sum(lengths[i] for i in m) for s in st for m in s
        )

    assert padding(steps) < padding(epoch_batches(lengths, 0, 3, 16, 4, group_by_length=False))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_examples_never_attend_to_each_other(tiny_model_dir, tiny_tokenizer, attn):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attn).eval()
    tok = tiny_tokenizer
    texts = [
        ("What is 3+4?", "3+4=7"),
        ("How do I bake bread?", "Mix flour and bake."),
        ("Hi", "Hello"),
    ]
    seqs = [tokenize_sft(tok, p, r) for p, r in texts]
    rows = pack(seqs, max_length=200)
    assert len(rows) == 1 and len(rows[0].positions) == sum(len(s[0]) for s in seqs)
    # a second, shorter row in the batch forces padding too
    batch = collate(
        rows + [Unit(seqs[2][0], seqs[2][1], list(range(len(seqs[2][0]))))], tok.pad_token_id
    )
    with torch.no_grad():
        # as in the trainer: no KV cache, positions given, no 2D mask
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        row = rows[0]
        starts = [i for i, p in enumerate(row.positions) if p == 0] + [len(row)]
        assert len(starts) == 4
        for a, b in zip(starts, starts[1:], strict=False):
            alone = model(input_ids=torch.tensor([row.ids[a:b]])).logits[0]
            torch.testing.assert_close(packed[0, a:b], alone, atol=1e-5, rtol=1e-5)
        # the control: without restarted positions the later examples would see the earlier
        plain = model(input_ids=batch["input_ids"][:1], use_cache=False).logits
        assert not torch.allclose(plain[0, starts[1] : starts[2]], packed[0, starts[1] : starts[2]])


def test_toy_zoo_builds_with_tokenizer_vocab(tiny_tokenizer):
    assert {"toy-weak", "toy-strong"} <= set(TOY_MODELS)
    weak = build_toy_model("toy-weak", tiny_tokenizer, seed=0)
    strong = build_toy_model("toy-strong", tiny_tokenizer, seed=0)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(strong) > 4 * n(weak)
    assert weak.config.vocab_size == len(tiny_tokenizer)
    again = build_toy_model("toy-weak", tiny_tokenizer, seed=0)
    assert all(
        torch.equal(a, b) for a, b in zip(weak.parameters(), again.parameters(), strict=True)
    )


def test_checkpoint_reload_reproduces_logits(tmp_path, tiny_tokenizer):
    from accelerate import Accelerator

    from sftlens.core import find_checkpoints, load_causal_lm, load_tokenizer
    from sftlens.train._state import save_checkpoint

    model = build_toy_model("toy-tiny", tiny_tokenizer, seed=1)
    with torch.no_grad():  # move away from init so a silent re-init would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    acc = Accelerator(cpu=True)
    state = {"step": 7, "epoch": 0.5, "tokens_seen": 123, "lr": 1e-3, "loss": 2.5}
    save_checkpoint(acc, model, opt, tiny_tokenizer, tmp_path / "checkpoints", state, {"step": 7})
    (ck,) = find_checkpoints(tmp_path)
    assert (ck.step, ck.epoch, ck.tokens_seen, ck.lr, ck.loss) == (7, 0.5, 123, 1e-3, 2.5)
    reloaded = load_causal_lm(ck.path)
    ids = torch.tensor([tiny_tokenizer("Check: 4*5 = 20, 20+2 = 22.")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model.eval()(ids).logits, rtol=0, atol=0)
    assert load_tokenizer(ck.path).get_vocab() == tiny_tokenizer.get_vocab()
