"""The vLLM engine's request building and output parsing, on machines without vLLM.

vLLM is CUDA-only and cannot be installed here, so its outputs are built as plain objects in
the shape vLLM documents for ``LLM.generate``: a ``RequestOutput`` per prompt whose
``outputs[0]`` is a ``CompletionOutput`` (``text``, ``token_ids``, ``finish_reason`` of
``"stop"`` or ``"length"``, ``stop_reason``). The text is written the way vLLM writes it with the
parameters sftlens sends (``include_stop_str_in_output=True``, ``skip_special_tokens=False``): the
stop string kept, and the EOS token's text kept too. The parsed completion must equal what the
hf engine returns for the same generated tokens.
"""

from __future__ import annotations

import dataclasses

import pytest

from sftlens.core import ConfigError
from sftlens.rollout import HFEngine, Request, SamplingConfig
from sftlens.rollout._engines import vllm_completion, vllm_sampling_kwargs

# The keyword arguments of vllm.SamplingParams that sftlens may send (vLLM's documented names).
VLLM_SAMPLING_PARAMS = {
    "n", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stop_token_ids",
    "ignore_eos", "max_tokens", "min_tokens", "logprobs", "include_stop_str_in_output",
    "skip_special_tokens", "spaces_between_special_tokens", "presence_penalty",
    "frequency_penalty", "repetition_penalty",
}  # fmt: skip


@dataclasses.dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: None
    finish_reason: str | None
    stop_reason: int | str | None = None


@dataclasses.dataclass
class RequestOutput:
    request_id: str
    prompt: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return HFEngine(str(tiny_model_dir), batch_size=4)


def _vllm_output(tok, prompt: str, toks: list[int], finish: str, stop: str | None = None):
    """What vLLM returns for these generated tokens: the detokenized text, cut right after the
    stop string when one ended the request, special tokens (EOS) left in."""
    text = tok.decode(toks, skip_special_tokens=False)
    if stop is not None:
        text = text[: text.index(stop) + len(stop)]
    out = CompletionOutput(0, text, list(toks), None, None, finish, stop)
    return RequestOutput("0", prompt, tok.encode(prompt), [out])


def test_sampling_params_are_vllm_names_with_one_seed_per_request():
    sampling = SamplingConfig(
        temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=64, stop=["</answer>"], seed=3
    )
    a = vllm_sampling_kwargs(Request("x", 11), sampling)
    b = vllm_sampling_kwargs(Request("y", 12), sampling)
    assert set(a) <= VLLM_SAMPLING_PARAMS, set(a) - VLLM_SAMPLING_PARAMS
    assert (a["seed"], b["seed"]) == (11, 12)
    assert a["n"] == 1 and a["max_tokens"] == 64 and a["stop"] == ["</answer>"]
    assert a["top_k"] == -1  # sftlens' "off" is 0, vLLM's is -1
    assert vllm_sampling_kwargs(Request("x", 0), SamplingConfig(top_k=5))["top_k"] == 5
    assert vllm_sampling_kwargs(Request("x", 0), SamplingConfig(stop=[]))["stop"] is None
    # Stop strings and special tokens stay in vLLM's text, so parsing can cut it like hf does.
    assert a["include_stop_str_in_output"] is True and a["skip_special_tokens"] is False


def test_eos_text_is_dropped_and_the_id_kept_as_hf_does(hf):
    tok = hf.tokenizer
    prompt = "Check: 4*5 = 20"
    free = hf.generate([Request(prompt, 0)], SamplingConfig(max_new_tokens=6, stop=[]))[0]
    toks = [*free.token_ids[:4], tok.eos_token_id]
    out = _vllm_output(tok, prompt, toks, "stop")
    assert out.outputs[0].text.endswith(tok.eos_token)  # what vLLM hands back
    got = vllm_completion(out, tok, [])
    assert got == hf._completion(toks, "stop", [])
    assert tok.eos_token not in got.text and got.token_ids[-1] == tok.eos_token_id


def test_stop_string_and_length_parse_as_hf_does(hf):
    tok = hf.tokenizer
    prompt = "How do I bake bread? Mix flour, water and yeast, then"
    free = hf.generate([Request(prompt, 0)], SamplingConfig(max_new_tokens=12, stop=[]))[0]
    toks = list(free.token_ids)
    stop = tok.decode(toks[3:6])
    assert stop
    cut = next(i for i in range(1, len(toks) + 1) if stop in tok.decode(toks[:i]))
    stopped = vllm_completion(_vllm_output(tok, prompt, toks[:cut], "stop", stop), tok, [stop])
    assert stopped == hf._completion(toks[:cut], "stop", [stop])
    assert stopped.text.endswith(stop) and stopped.finish_reason == "stop"

    length = vllm_completion(_vllm_output(tok, prompt, toks, "length"), tok, [])
    assert length == hf._completion(toks, "length", [])
    assert length.finish_reason == "length" and length.n_tokens == len(toks)


def test_an_aborted_request_is_an_error_not_a_trace(hf):
    out = _vllm_output(hf.tokenizer, "hi", [5, 6], "abort")
    with pytest.raises(ConfigError, match="abort"):
        vllm_completion(out, hf.tokenizer, [])
