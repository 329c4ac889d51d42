"""The hf engine: batching, left padding, seeds, stop strings and EOS, on a real tiny Llama."""

from __future__ import annotations

import pytest

from sftlens.rollout import HFEngine, Request, SamplingConfig, sample_seed

PROMPTS = [
    "Using the numbers [3, 5, 7], make 22.",
    "hi",
    "How do I bake bread? Mix flour, water and yeast, then",
    "route from A to F: A-B, B-D",
    "Check: 4*5 = 20",
]


@pytest.fixture(scope="module")
def engine_pair(tiny_model_dir):
    """A batched and an unbatched engine sharing one loaded model."""
    big = HFEngine(str(tiny_model_dir), batch_size=8)
    one = HFEngine(model=big.model, tokenizer=big.tokenizer, batch_size=1)
    return big, one


def _texts(engine):
    from sftlens.tasks import format_prompt

    return [format_prompt(engine.tokenizer, p) for p in PROMPTS]


def test_batched_equals_unbatched_greedy_token_for_token(engine_pair):
    big, one = engine_pair
    sampling = SamplingConfig(max_new_tokens=24, stop=[])
    reqs = [Request(t, 0) for t in _texts(big)]
    batched = big.generate(reqs, sampling)
    single = one.generate(reqs, sampling)
    assert len({len(big.encode(t)) for t in _texts(big)}) > 1  # really padded
    for b, s in zip(batched, single, strict=True):
        assert b.token_ids == s.token_ids
        assert b.text == s.text
        assert b.finish_reason == s.finish_reason


def test_greedy_matches_transformers_generate_with_left_padding(engine_pair):
    """Our loop equals transformers' own greedy `generate`, per prompt and left-padded."""
    import torch

    big, _ = engine_pair
    tok, model = big.tokenizer, big.model
    sampling = SamplingConfig(max_new_tokens=16, stop=[])
    ours = big.generate([Request(t, 0) for t in _texts(big)], sampling)
    tok.padding_side = "left"
    enc = tok(_texts(big), return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        ref = model.generate(
            **enc, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id
        )
    width = enc["input_ids"].shape[1]
    for row, c in enumerate(ours):
        expected = ref[row, width:].tolist()
        assert list(c.token_ids) == expected[: len(c.token_ids)]


def test_same_seed_same_samples_independent_of_batch(engine_pair):
    big, one = engine_pair
    sampling = SamplingConfig(max_new_tokens=20, stop=[], temperature=1.0, top_p=0.95, top_k=50)
    texts = _texts(big)
    reqs = [Request(t, sample_seed(7, f"p{i}", 0)) for i, t in enumerate(texts)]
    first = big.generate(reqs, sampling)
    again = big.generate(reqs, sampling)
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    # Sample 2 alone, and inside a differently composed batch: the same tokens.
    alone = one.generate([reqs[2]], sampling)[0]
    mixed = big.generate([reqs[4], reqs[2], Request(texts[0], 99)], sampling)[1]
    assert alone.token_ids == first[2].token_ids == mixed.token_ids
    # Another seed gives other samples.
    other = big.generate([Request(r.text, r.seed + 1) for r in reqs], sampling)
    assert [c.token_ids for c in other] != [c.token_ids for c in first]


def test_sample_seed_depends_on_every_part():
    s = sample_seed(0, "p1", 0)
    assert s == sample_seed(0, "p1", 0)
    assert len({s, sample_seed(1, "p1", 0), sample_seed(0, "p2", 0), sample_seed(0, "p1", 1)}) == 4
    assert 0 <= s < 2**63


def test_length_budget_gives_finish_reason_length(engine_pair):
    big, _ = engine_pair
    out = big.generate([Request(_texts(big)[0], 0)], SamplingConfig(max_new_tokens=5, stop=[]))[0]
    assert out.finish_reason == "length"
    assert out.n_tokens == 5


def test_stop_string_cuts_completion_and_stops(engine_pair):
    big, one = engine_pair
    text = _texts(big)[2]
    free = one.generate([Request(text, 0)], SamplingConfig(max_new_tokens=30, stop=[]))[0]
    # A stop string the greedy continuation is known to produce: tokens 3..5 of it.
    stop = big.tokenizer.decode(list(free.token_ids[3:6]))
    assert stop
    stopped = big.generate(
        [Request(text, 0), Request(_texts(big)[0], 0)],
        SamplingConfig(max_new_tokens=30, stop=[stop]),
    )[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text.endswith(stop)
    cut = free.text.index(stop) + len(stop)
    assert stopped.text == free.text[:cut]
    assert stopped.n_tokens <= 6
    assert stopped.token_ids == free.token_ids[: stopped.n_tokens]


def test_eos_stops_and_is_not_in_text(engine_pair):
    big, _ = engine_pair
    text = _texts(big)[1]
    sampling = SamplingConfig(max_new_tokens=12, stop=[])
    free = big.generate([Request(text, 0)], sampling)[0]
    # Declare the 4th greedy token an EOS (as models with several EOS ids do).
    eos_tok = free.token_ids[3]
    first_hit = free.token_ids.index(eos_tok)
    eng = HFEngine(model=big.model, tokenizer=big.tokenizer, batch_size=4)
    eng.eos_ids = eng.eos_ids | {eos_tok}
    out = eng.generate([Request(text, 0)], sampling)[0]
    assert out.finish_reason == "stop"
    assert out.token_ids == free.token_ids[: first_hit + 1]
    assert out.text == big.tokenizer.decode(list(free.token_ids[:first_hit]))


@pytest.mark.gpu
def test_vllm_engine_greedy_matches_hf(tiny_model_dir):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs CUDA")
    from sftlens.rollout import VLLMEngine

    hf = HFEngine(str(tiny_model_dir), batch_size=8)
    vl = VLLMEngine(str(tiny_model_dir), dtype="float32")
    sampling = SamplingConfig(max_new_tokens=8, stop=[])
    reqs = [Request(t, 0) for t in _texts(hf)]
    a = hf.generate(reqs, sampling)
    b = vl.generate(reqs, sampling)
    assert [c.finish_reason for c in b] == [c.finish_reason for c in a]
    agree = sum(x.token_ids[:4] == y.token_ids[:4] for x, y in zip(a, b, strict=True))
    assert agree >= len(reqs) - 1
