"""Generation engines behind one interface: ``hf`` (our own batched KV-cache loop) and ``vllm``.

Both take a list of `Request` (the exact prompt text and the sample's seed) and return one
`Completion` per request, in order. Seeds are per request: the caller derives each one from
``(sampling.seed, problem id, sample idx)`` with `sample_seed`, so a sample does not depend on
which other requests share its batch.

The ``hf`` engine runs its own decoding loop rather than ``model.generate``: left padding with
position ids from the attention mask, a `DynamicCache`, one ``torch.Generator`` per row (so the
random stream is per sample, not per batch), stop strings checked on the decoded tail of each
row, and finished rows dropped from the batch and the cache.

Seed semantics (what holds): the random stream of sample ``i`` of problem ``p`` depends only on
``(seed, p, i)``, never on batch size or neighbours, so reruns and resumed sweeps reproduce it.
Token-for-token identity across batch compositions also needs the forward pass to give the same
logits for a row whatever its padding; the tests check this on CPU fp32 (greedy and sampled).
On GPUs, kernels chosen per batch shape can move logits in the last bits, so a near-tie may
resolve differently there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from typing import Any, Protocol

from sftlens.core import ConfigError, load_causal_lm, load_tokenizer
from sftlens.rollout._config import SamplingConfig

__all__ = [
    "Completion",
    "Engine",
    "HFEngine",
    "Request",
    "VLLMEngine",
    "make_engine",
    "sample_seed",
    "vllm_completion",
    "vllm_sampling_kwargs",
]


@dataclasses.dataclass(frozen=True)
class Request:
    """One completion to sample: the exact text the model sees and the sample's seed."""

    text: str
    seed: int


@dataclasses.dataclass(frozen=True)
class Completion:
    """A sampled completion.

    Attributes:
        text: the decoded completion, cut right after the first stop string (kept) and without
            the EOS token.
        token_ids: the generated token ids up to and including the stop (EOS included).
        finish_reason: ``stop`` (EOS or a stop string) or ``length`` (budget exhausted).
    """

    text: str
    token_ids: tuple[int, ...]
    finish_reason: str

    @property
    def n_tokens(self) -> int:
        """Generated tokens, the terminating EOS or stop-string token included."""
        return len(self.token_ids)


class Engine(Protocol):
    """What the sweep needs from an engine."""

    name: str
    tokenizer: Any

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Completion]:
        """One completion per request, in order."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


def sample_seed(seed: int, problem_id: str, sample_idx: int) -> int:
    """A 63-bit seed for sample `sample_idx` of problem `problem_id` under base `seed`."""
    h = hashlib.sha256(f"{seed}\x00{problem_id}\x00{sample_idx}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """Cut `text` right after the earliest stop string; (text, whether one was found)."""
    best = -1
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best < 0 or i + len(s) < best):
            best = i + len(s)
    return (text[:best], True) if best >= 0 else (text, False)


class HFEngine:
    """Batched generation with a transformers causal LM and our own KV-cache loop.

    Args:
        model_path: checkpoint dir or hub id (ignored when `model` is given).
        device: torch device.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        batch_size: rows per forward batch.
        model, tokenizer: an already loaded model / tokenizer (tests, benchmarks).
    """

    name = "hf"

    def __init__(
        self,
        model_path: str = "",
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 32,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        self.model = model if model is not None else load_causal_lm(model_path, device, dtype)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = str(next(self.model.parameters()).device)
        self.batch_size = batch_size
        self.eos_ids = self._eos_ids()
        # transformers renamed `past_key_values` to `cache` during 5.x (the old name warns and
        # goes in 5.40); pass whichever this model's forward takes.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (
            self.tokenizer.eos_token_id,
            getattr(self.model.generation_config, "eos_token_id", None),
        ):
            if isinstance(src, int):
                ids.add(src)
            elif isinstance(src, (list, tuple)):
                ids.update(int(i) for i in src)
        if not ids:
            raise ConfigError("model and tokenizer define no EOS token; set tokenizer.eos_token.")
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt; special tokens (BOS) are added unless the text starts with
        the BOS token already (as chat templates that hold it do)."""
        bos = self.tokenizer.bos_token
        has_bos = bool(bos) and text.startswith(bos)
        return self.tokenizer(text, add_special_tokens=not has_bos)["input_ids"]

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Completion]:
        """Sample one completion per request (batches of ``batch_size``, similar lengths together).

        Requests are sorted by prompt length before batching so batches carry little padding;
        results come back in request order.
        """
        encoded = [self.encode(r.text) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (len(encoded[i]), i))
        out: list[Completion | None] = [None] * len(requests)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            done = self._generate_batch(
                [encoded[i] for i in idx], [requests[i].seed for i in idx], sampling
            )
            for i, c in zip(idx, done, strict=True):
                out[i] = c
        return out  # type: ignore[return-value]

    def _pick(self, logits: Any, gens: list[Any], sampling: SamplingConfig) -> Any:
        """Next token per row. logits: [B, V] float32 -> [B] long."""
        import torch

        if sampling.temperature == 0:
            return logits.argmax(-1)
        logits = logits / sampling.temperature
        if sampling.top_k > 0:
            k = min(sampling.top_k, logits.shape[-1])
            kth = torch.topk(logits, k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if sampling.top_p < 1.0:
            sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
            probs = sorted_logits.softmax(-1)
            # Drop a token when the mass before it already reaches top_p (the first is kept).
            drop = probs.cumsum(-1) - probs >= sampling.top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, sorted_idx, sorted_logits)
        probs = logits.softmax(-1)
        # One generator per row: a sample's draws never depend on its batch neighbours.
        return torch.stack(
            [torch.multinomial(probs[b], 1, generator=g)[0] for b, g in enumerate(gens)]
        )

    def _generate_batch(
        self, prompts: list[list[int]], seeds: list[int], sampling: SamplingConfig
    ) -> list[Completion]:
        import torch
        from transformers import DynamicCache

        tok = self.tokenizer
        dev = self.device
        n = len(prompts)
        width = max(len(p) for p in prompts)
        pad = tok.pad_token_id
        # Left padding: every row's last prompt token sits in the last column, so one decoding
        # step appends one column for all rows. Position ids count real tokens only.
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for b, p in enumerate(prompts):
            ids[b, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[b, width - len(p) :] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        budgets = []
        for p in prompts:
            room = sampling.max_new_tokens
            if self.max_positions:
                room = min(room, self.max_positions - len(p))
            budgets.append(max(room, 0))
        gens = [torch.Generator(device=dev).manual_seed(s) for s in seeds]
        stops = list(sampling.stop)
        # A stop string spans at most this many trailing tokens (each token decodes to >= 1 char;
        # doubled for byte-level tokens that split a character).
        tail = 2 * max((len(s) for s in stops), default=0) + 2

        generated: list[list[int]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        for b in range(n):
            if budgets[b] == 0:
                finish[b] = "length"
        active = [b for b in range(n) if finish[b] is None]
        if not active:
            return [Completion("", (), "length") for _ in range(n)]
        sel = torch.tensor(active, device=dev)
        ids, mask, pos = ids[sel], mask[sel], pos[sel]
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            logits = (
                self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos,
                    **{self._cache_kw: cache},
                    use_cache=True,
                    logits_to_keep=1,
                )
                .logits[:, -1, :]
                .float()
            )
            pos = pos[:, -1:]
            while True:
                nxt = self._pick(logits, [gens[b] for b in active], sampling).tolist()
                keep = []
                for row, b in enumerate(active):
                    t = int(nxt[row])
                    generated[b].append(t)
                    if t in self.eos_ids or self._hit_stop(generated[b], stops, tail):
                        finish[b] = "stop"
                    elif len(generated[b]) >= budgets[b]:
                        finish[b] = "length"
                    else:
                        keep.append(row)
                if not keep:
                    break
                if len(keep) < len(active):
                    # Drop finished rows from the batch and the KV cache: later steps only pay
                    # for sequences still running.
                    ksel = torch.tensor(keep, device=dev)
                    cache.batch_select_indices(ksel)
                    mask, pos = mask[ksel], pos[ksel]
                    active = [active[r] for r in keep]
                    nxt = [nxt[r] for r in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                pos = pos + 1
                step_ids = torch.tensor(nxt, dtype=torch.long, device=dev)[:, None]
                logits = (
                    self.model(
                        input_ids=step_ids,
                        attention_mask=mask,
                        position_ids=pos,
                        **{self._cache_kw: cache},
                        use_cache=True,
                    )
                    .logits[:, -1, :]
                    .float()
                )
        return [self._completion(generated[b], finish[b] or "length", stops) for b in range(n)]

    def _hit_stop(self, toks: list[int], stops: list[str], tail: int) -> bool:
        """Whether the decoded tail of a row's tokens contains a stop string."""
        if not stops:
            return False
        text = self.tokenizer.decode(toks[-tail:], skip_special_tokens=False)
        return any(s in text for s in stops)

    def _completion(self, toks: list[int], finish: str, stops: list[str]) -> Completion:
        body = toks[:-1] if toks and toks[-1] in self.eos_ids else toks
        text = self.tokenizer.decode(body, skip_special_tokens=False)
        text, _ = _cut_at_stop(text, stops)
        return Completion(text=text, token_ids=tuple(toks), finish_reason=finish)

    def close(self) -> None:
        self.model = None


def vllm_sampling_kwargs(request: Request, sampling: SamplingConfig) -> dict[str, Any]:
    """Keyword arguments of vLLM's ``SamplingParams`` for one request.

    One sample per request (``n=1``) with the request's own seed; stop strings kept in the
    output and special tokens not skipped, so the text is cut exactly as the hf engine cuts it.
    """
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k if sampling.top_k > 0 else -1,  # vLLM's "off" is -1
        "max_tokens": sampling.max_new_tokens,
        "stop": list(sampling.stop) or None,
        "include_stop_str_in_output": True,
        "skip_special_tokens": False,
        "seed": request.seed,
    }


def vllm_completion(output: Any, tokenizer: Any, stops: list[str]) -> Completion:
    """The `Completion` of one vLLM ``RequestOutput`` (its ``outputs[0]``: ``text``,
    ``token_ids``, ``finish_reason`` of ``stop`` or ``length``).

    vLLM keeps the text of the EOS (or a generation-config stop token) in ``text`` when
    ``include_stop_str_in_output`` is on; it is dropped here, as the hf engine drops it, and
    ``token_ids`` keeps the id.
    """
    c = output.outputs[0]
    if c.finish_reason not in ("stop", "length"):
        raise ConfigError(
            f"vLLM finished a request with reason {c.finish_reason!r} (expected 'stop' or "
            "'length'); the request was aborted, rerun the sweep to resume."
        )
    toks = tuple(int(t) for t in c.token_ids)
    text = c.text
    enders = {tokenizer.eos_token_id, *tokenizer.all_special_ids} - {None}
    if c.finish_reason == "stop" and toks and toks[-1] in enders:
        eos_text = tokenizer.decode([toks[-1]], skip_special_tokens=False)
        if eos_text and text.endswith(eos_text):
            text = text[: -len(eos_text)]
    text, _ = _cut_at_stop(text, stops)
    return Completion(text=text, token_ids=toks, finish_reason=c.finish_reason)


class VLLMEngine:
    """vLLM's offline API (GPU machines; ``pip install 'sftlens[vllm]'``).

    One vLLM request per sample (``n=1``, the sample's own ``seed``), so sample ``i`` of problem
    ``p`` matches across runs and batch compositions as far as vLLM's seeded sampling allows.
    """

    name = "vllm"

    def __init__(self, model_path: str, dtype: str = "auto", seed: int = 0, **llm_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ConfigError(
                f"engine 'vllm' needs vLLM ({e}); install it on a GPU machine "
                "(pip install 'sftlens[vllm]') or use engine: hf."
            ) from None
        self.llm = LLM(
            model=model_path, dtype=dtype, seed=seed, trust_remote_code=False, **llm_kwargs
        )
        self.tokenizer = load_tokenizer(model_path)

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Completion]:
        from vllm import SamplingParams

        params = [SamplingParams(**vllm_sampling_kwargs(r, sampling)) for r in requests]
        outs = self.llm.generate([r.text for r in requests], params, use_tqdm=False)
        return [vllm_completion(o, self.tokenizer, sampling.stop) for o in outs]

    def close(self) -> None:
        # vLLM keeps GPU memory until the engine is collected; free it before the next model.
        import gc

        self.llm = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def make_engine(
    engine: str,
    model_path: str,
    device: str = "cpu",
    dtype: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
) -> Any:
    """The engine called `engine` (``hf`` or ``vllm``) loaded on `model_path`."""
    if engine == "hf":
        return HFEngine(model_path, device=device, dtype=dtype, batch_size=batch_size)
    if engine == "vllm":
        return VLLMEngine(model_path, dtype=dtype, seed=seed)
    raise ConfigError(f"engine {engine!r}: use 'hf' or 'vllm'.")
