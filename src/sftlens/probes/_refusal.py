"""Refusal directions: difference-in-means between harmful and harmless instructions, and their
selection as in Arditi et al. (2024), "Refusal in language models is mediated by a single
direction".

Everything works through PyTorch hooks on the decoder layers of any HF causal LM
(``model.model.layers[i]`` for Llama/Qwen/Mistral/Gemma, ``transformer.h`` for GPT-2 style):

- the candidate direction at layer ``l`` and post-instruction position ``p`` is
  ``mean(resid_pre[l, p] | harmful) - mean(resid_pre[l, p] | harmless)``;
- *directional ablation* projects the unit direction out of every layer's input residual and out
  of every attention and MLP output, at every position;
- *activation addition* adds the (unnormalised) direction to the input residual of its layer, at
  every position.

Prompts are batched with left padding, explicit position ids and a deterministic order (sorted
by token ids), so the numbers do not depend on the order in which prompts are given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

from sftlens.core import Config, ConfigError, DataError, SftlensError, option, warn

PLAIN_TEMPLATE = "{instruction}\n"
_SENTINEL = "\x00INSTRUCTION\x00"

# First tokens of a refusal, by model family (config.model_type). The toy world's models answer
# harmful requests with "I can't help with that." and never start an answer with "I".
# Arditi et al. use "I" and "As" ("As an AI ...") for Llama and Qwen chat models.
REFUSAL_TOKENS_BY_FAMILY: dict[str, list[str]] = {
    "toy": ["I", "Sorry", "No"],
    "llama": ["I", "As"],
    "qwen2": ["I", "As"],
    "qwen3": ["I", "As"],
    "mistral": ["I", "As"],
    "gemma": ["I"],
    "gemma2": ["I"],
}
DEFAULT_REFUSAL_TOKENS = ["I"]


@dataclasses.dataclass
class RefusalDirectionConfig(Config):
    """`sftlens refusal`: refusal directions of every checkpoint, their drift and their effects."""

    harmful: str = option("", "CSV/JSON/JSONL file with an `instruction` column ('' = toy world)")
    harmless: str = option("", "CSV/JSON/JSONL file with an `instruction` column ('' = toy world)")
    n_train: int = option(64, "prompts of each kind for the difference in means")
    n_val: int = option(32, "prompts of each kind for selecting the direction")
    n_eval: int = option(32, "held-out prompts of each kind for AUROC and refusal rates")
    seed: int = option(0, "seed for prompt sampling and splitting")
    template: str = option(
        "auto",
        "auto (the tokenizer's chat template, else plain) | chat | plain | a string with "
        "{instruction}",
    )
    positions: int = option(0, "post-instruction positions to use (0 = all template tokens)")
    refusal_tokens: list[str] = option(
        factory=list,
        help="tokens that start a refusal, for the refusal score ([] = by model family)",
    )
    refusal_phrases: list[str] = option(
        factory=list, help="phrases marking a refusal in generations ([] = the rollout defaults)"
    )
    filter_prompts: bool = option(
        False, "keep only harmful prompts the model refuses and harmless ones it does not"
    )
    prune_layer_frac: float = option(0.2, "exclude candidate layers in this last fraction")
    kl_threshold: float = option(0.1, "max KL on harmless prompts under ablation")
    induce_threshold: float = option(0.0, "min refusal score on harmless prompts under addition")
    addition_prompt_only: bool = option(
        True, "activation addition at prompt positions only (False: generated tokens too)"
    )
    max_new_tokens: int = option(24, "greedy tokens generated to judge refusal")
    batch_size: int = option(16, "prompts per forward batch")
    base: str = option("", "base checkpoint dir for cosine drift ('' = the lowest step)")
    reference: str = option("", "a saved direction (.safetensors) to compare every checkpoint to")
    model_name: str = option("", "model name in the table ('' = from the path)")
    device: str = option("cpu", "torch device")
    dtype: str = option("float32", "auto | float32 | bfloat16 | float16")
    plots: bool = option(True, "draw the drift and layer plots")

    def validate(self) -> None:
        if bool(self.harmful) != bool(self.harmless):
            raise ConfigError(
                "harmful/harmless: give both files (or neither, for the toy world's prompts)."
            )
        for name in ("n_train", "n_val", "n_eval", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}.")
        if self.positions < 0:
            raise ConfigError(f"positions: must be >= 0 (0 = all), got {self.positions}.")
        if not 0.0 <= self.prune_layer_frac < 1.0:
            raise ConfigError(f"prune_layer_frac: must be in [0, 1), got {self.prune_layer_frac}.")
        if self.template not in ("auto", "chat", "plain") and "{instruction}" not in self.template:
            raise ConfigError(
                f"template: {self.template!r} has no {{instruction}} placeholder; use auto, chat, "
                "plain or a string such as 'Q: {instruction}\\nA:'."
            )


@dataclasses.dataclass
class PromptFormat:
    """How instructions become model input.

    Attributes:
        template: a string with ``{instruction}``.
        add_special_tokens: passed to the tokenizer (False for chat templates, which carry BOS).
        n_positions: how many final tokens are "post-instruction" positions.
    """

    template: str
    add_special_tokens: bool
    n_positions: int

    def render(self, instruction: str) -> str:
        return self.template.replace("{instruction}", instruction)


def prompt_format(tokenizer: Any, template: str = "auto", positions: int = 0) -> PromptFormat:
    """Resolve the prompt template and the number of post-instruction token positions.

    Args:
        tokenizer: the model's tokenizer.
        template: ``auto`` (chat template if the tokenizer has one, else plain), ``chat``,
            ``plain`` (``"{instruction}\\n"``) or a string with ``{instruction}``.
        positions: number of final positions to use; 0 = every token after the instruction.
    """
    from sftlens.tasks import format_prompt

    has_chat = getattr(tokenizer, "chat_template", None) is not None
    if template == "chat" and not has_chat:
        raise ConfigError(
            "template: 'chat' but the tokenizer has no chat template; use template=plain or a "
            "string with {instruction}."
        )
    if template in ("auto", "chat") and has_chat:
        rendered = format_prompt(tokenizer, _SENTINEL, chat=True)
        if rendered.count(_SENTINEL) != 1:
            raise ConfigError("template: the chat template does not contain the user message once.")
        fmt, add_special = rendered.replace(_SENTINEL, "{instruction}"), False
    elif template in ("auto", "plain"):
        fmt, add_special = PLAIN_TEMPLATE, True
    else:
        fmt, add_special = template, True
    suffix = fmt.split("{instruction}", 1)[1]
    n_suffix = len(tokenizer(suffix, add_special_tokens=False)["input_ids"]) if suffix else 0
    n_pos = positions if positions > 0 else max(n_suffix, 1)
    return PromptFormat(template=fmt, add_special_tokens=add_special, n_positions=n_pos)


def refusal_token_ids(tokenizer: Any, model: Any, tokens: Sequence[str] = ()) -> list[int]:
    """Token ids whose probability at the first response position makes the refusal score.

    Args:
        tokens: strings that must each be one token; empty = `REFUSAL_TOKENS_BY_FAMILY` for the
            model's family (the toy world when the tokenizer has ``<|assistant|>``).
    """
    if not tokens:
        from sftlens.tasks import ASSISTANT

        family = getattr(getattr(model, "config", None), "model_type", "")
        if ASSISTANT in getattr(tokenizer, "all_special_tokens", []):
            family = "toy"
        tokens = REFUSAL_TOKENS_BY_FAMILY.get(family, DEFAULT_REFUSAL_TOKENS)
        # Family defaults that a small vocabulary splits into pieces are skipped ("I" is a
        # single byte, so something is always left).
        single = [
            t for t in tokens if len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1
        ]
        tokens = single or DEFAULT_REFUSAL_TOKENS
    ids: list[int] = []
    for t in tokens:
        enc = tokenizer(t, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise ConfigError(
                f"refusal_tokens: {t!r} is {len(enc)} tokens for this tokenizer; give strings "
                "that are one token each (e.g. 'I')."
            )
        if enc[0] not in ids:
            ids.append(enc[0])
    return ids


# --------------------------------------------------------------------------- hooks


def decoder_layers(model: Any) -> list[Any]:
    """The decoder blocks of an HF causal LM, in order."""
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return list(obj)
    raise SftlensError(
        f"{type(model).__name__}: cannot find the decoder layers (looked for model.layers, "
        "transformer.h, gpt_neox.layers); this architecture is not supported."
    )


def _sublayer(layer: Any, names: Sequence[str]) -> Any:
    for n in names:
        if hasattr(layer, n):
            return getattr(layer, n)
    return None


def _hidden(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs["hidden_states"]


def _replace_hidden(args: tuple, kwargs: dict, h: Any) -> tuple[tuple, dict]:
    if args:
        return (h, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": h}


@contextlib.contextmanager
def _registered(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def directional_ablation(model: Any, direction: Any) -> Iterator[None]:
    """Project ``direction`` (shape ``[d_model]``) out of the residual stream everywhere.

    Removes it from every decoder layer's input and from every attention and MLP output, at
    every position (Arditi et al. 2024, section 2.4).
    """
    r = (direction / direction.norm()).detach()

    def project(h: Any) -> Any:
        rr = r.to(device=h.device, dtype=h.dtype)
        return h - (h @ rr).unsqueeze(-1) * rr

    def pre(_m: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return _replace_hidden(args, kwargs, project(_hidden(args, kwargs)))

    def post(_m: Any, _args: tuple, out: Any) -> Any:
        if isinstance(out, tuple):
            return (project(out[0]), *out[1:])
        return project(out)

    handles = []
    for layer in decoder_layers(model):
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        for names in (
            ("self_attn", "attn", "self_attention", "attention"),
            ("mlp", "feed_forward"),
        ):
            sub = _sublayer(layer, names)
            if sub is not None:
                handles.append(sub.register_forward_hook(post))
    with _registered(handles):
        yield


@contextlib.contextmanager
def activation_addition(
    model: Any, vector: Any, layer: int, coeff: float = 1.0, prompt_only: bool = True
) -> Iterator[None]:
    """Add ``coeff * vector`` (shape ``[d_model]``) to layer ``layer``'s input.

    Args:
        prompt_only: add at every prompt position but not at generated tokens (forward passes
            of a single new token during cached decoding). With False, every position, as in
            Arditi et al.; small models then tend to repeat the first refusal token.
    """
    v = (coeff * vector).detach()

    def pre(_m: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        h = _hidden(args, kwargs)
        if prompt_only and h.shape[1] == 1:
            return None
        return _replace_hidden(args, kwargs, h + v.to(device=h.device, dtype=h.dtype))

    handle = decoder_layers(model)[layer].register_forward_pre_hook(pre, with_kwargs=True)
    with _registered([handle]):
        yield


def no_intervention() -> contextlib.AbstractContextManager:
    """A context with no hooks (the model as it is)."""
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- batching


def encode(tokenizer: Any, fmt: PromptFormat, instructions: Sequence[str]) -> list[list[int]]:
    """Token ids of each rendered prompt."""
    enc = tokenizer(
        [fmt.render(s) for s in instructions], add_special_tokens=fmt.add_special_tokens
    )
    return [list(x) for x in enc["input_ids"]]


def _pad_id(tokenizer: Any) -> int:
    pid = tokenizer.pad_token_id
    return pid if pid is not None else (tokenizer.eos_token_id or 0)


def left_padded_batches(
    ids: Sequence[Sequence[int]], batch_size: int, pad_id: int, device: Any = "cpu"
) -> Iterator[tuple[list[int], Any, Any, Any]]:
    """Yield ``(indices, input_ids, attention_mask, position_ids)`` with left padding.

    Prompts are visited sorted by (length, ids), so batches (and the numbers) are the same
    whatever order the prompts were given in. Tensors are ``[batch, max_len]``.
    """
    import torch

    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), tuple(ids[i])))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(ids[i]) for i in idx)
        inp = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            n = len(ids[i])
            inp[row, width - n :] = torch.tensor(ids[i], dtype=torch.long)
            mask[row, width - n :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        yield idx, inp.to(device), mask.to(device), pos.to(device)


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def last_logprobs(model: Any, ids: Sequence[Sequence[int]], batch_size: int, pad_id: int) -> Any:
    """Log-probabilities of the next token after each prompt: ``[n_prompts, vocab]`` (float32)."""
    import torch

    out = torch.empty((len(ids), model.config.get_text_config().vocab_size), dtype=torch.float32)
    with torch.no_grad():
        for idx, inp, mask, pos in left_padded_batches(ids, batch_size, pad_id, _device(model)):
            logits = model(
                input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=False
            ).logits[:, -1, :]
            lp = torch.log_softmax(logits.float(), dim=-1).cpu()
            out[idx] = lp[:, : out.shape[1]]
    return out


def refusal_scores(logprobs: Any, token_ids: Sequence[int]) -> Any:
    """Log-odds of the refusal tokens: ``log p - log(1 - p)``, p their total probability.

    Args:
        logprobs: ``[n, vocab]`` next-token log-probabilities.

    Returns:
        ``[n]`` float64 scores (positive = refusal more likely than not).
    """
    import torch

    lp = logprobs.double()
    log_p = torch.logsumexp(lp[:, list(token_ids)], dim=-1)
    p = log_p.exp()
    eps = 1e-8
    return torch.log(p + eps) - torch.log((1 - p).clamp(min=0) + eps)


def kl_divergence(logprobs_p: Any, logprobs_q: Any) -> Any:
    """``KL(p || q)`` per row of two ``[n, vocab]`` log-probability tensors -> ``[n]``."""
    p = logprobs_p.double()
    return (p.exp() * (p - logprobs_q.double())).sum(-1)


def collect_residuals(
    model: Any, ids: Sequence[Sequence[int]], n_positions: int, batch_size: int, pad_id: int
) -> Any:
    """Input residuals of every layer at the last ``n_positions`` tokens of every prompt.

    Returns:
        ``[n_prompts, n_positions, n_layers, d_model]`` float32, in the given prompt order.
    """
    import torch

    layers = decoder_layers(model)
    if any(len(x) < n_positions for x in ids):
        raise DataError(f"a prompt has fewer than {n_positions} tokens; use fewer positions.")
    d_model = model.config.get_text_config().hidden_size
    out = torch.empty((len(ids), n_positions, len(layers), d_model), dtype=torch.float32)
    current: dict[str, Any] = {}

    def make_hook(li: int) -> Any:
        def hook(_m: Any, args: tuple, kwargs: dict) -> None:
            # Left padding puts every prompt's last tokens at the end of the batch.
            h = _hidden(args, kwargs)[:, -n_positions:, :]
            out[current["idx"], :, li, :] = h.float().cpu()

        return hook

    handles = [
        layer.register_forward_pre_hook(make_hook(i), with_kwargs=True)
        for i, layer in enumerate(layers)
    ]
    with _registered(handles), torch.no_grad():
        for idx, inp, mask, pos in left_padded_batches(ids, batch_size, pad_id, _device(model)):
            current["idx"] = idx
            model(input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=False)
    return out


# --------------------------------------------------------------------------- directions


@dataclasses.dataclass
class Directions:
    """Difference-in-means candidates of one model.

    Attributes:
        mean_diffs: ``[n_positions, n_layers, d_model]`` float32; index ``p`` is position
            ``p - n_positions`` (``-1`` = the last prompt token).
        harmful_mean: ``[n_positions, n_layers, d_model]`` mean over harmful prompts.
        harmless_mean: same, harmless prompts.
        n_harmful: prompts used; n_harmless likewise.
    """

    mean_diffs: Any
    harmful_mean: Any
    harmless_mean: Any
    n_harmful: int
    n_harmless: int

    @property
    def n_positions(self) -> int:
        return int(self.mean_diffs.shape[0])

    @property
    def n_layers(self) -> int:
        return int(self.mean_diffs.shape[1])


def refusal_directions(
    model: Any,
    tokenizer: Any,
    harmful: Sequence[str],
    harmless: Sequence[str],
    fmt: PromptFormat,
    batch_size: int = 16,
) -> Directions:
    """Difference-in-means refusal candidates for every layer and post-instruction position.

    Args:
        model: an HF causal LM (eval mode).
        tokenizer: its tokenizer.
        harmful: harmful instructions (plain text; `fmt` renders them).
        harmless: harmless instructions.
        fmt: the prompt format (`prompt_format`).
        batch_size: prompts per forward pass.

    Returns:
        `Directions` with ``mean_diffs`` of shape ``[n_positions, n_layers, d_model]``.
    """
    if not harmful or not harmless:
        kind = "harmful" if not harmful else "harmless"
        raise DataError(f"no {kind} prompts to compute a refusal direction from.")
    pad = _pad_id(tokenizer)
    means = []
    for prompts in (harmful, harmless):
        acts = collect_residuals(
            model, encode(tokenizer, fmt, prompts), fmt.n_positions, batch_size, pad
        )
        means.append(acts.double().mean(0))
    diff = (means[0] - means[1]).float()
    return Directions(diff, means[0].float(), means[1].float(), len(harmful), len(harmless))


def filter_by_refusal(
    model: Any,
    tokenizer: Any,
    instructions: Sequence[str],
    fmt: PromptFormat,
    token_ids: Sequence[int],
    refused: bool,
    batch_size: int = 16,
    what: str = "prompts",
) -> list[str]:
    """Keep instructions whose refusal score is > 0 (``refused``) or <= 0 (not refused).

    Raises:
        DataError: nothing is left (e.g. a base model that never refuses).
    """
    ids = encode(tokenizer, fmt, instructions)
    scores = refusal_scores(last_logprobs(model, ids, batch_size, _pad_id(tokenizer)), token_ids)
    keep = [s for s, sc in zip(instructions, scores.tolist(), strict=True) if (sc > 0) == refused]
    if not keep:
        state = "refuses" if refused else "does not refuse"
        raise DataError(
            f"filter_prompts: the model {state} none of the {len(instructions)} {what}; it "
            "probably has no refusal behaviour. Run with filter_prompts=false."
        )
    if len(keep) < len(instructions):
        state = "refuses" if refused else "answers"
        warn(f"filter_prompts: using {len(keep)} of {len(instructions)} {what} (the ones the "
             f"model {state}); set filter_prompts=false to keep all.")  # fmt: skip
    return keep


@dataclasses.dataclass
class Selection:
    """The selected refusal direction of one model.

    Attributes:
        position: negative offset of the token (``-1`` = last prompt token).
        layer: the decoder layer whose input the direction lives in.
        direction: ``[d_model]`` unnormalised difference in means at (position, layer).
        filtered: True if the candidate passed every filter; False if none did and the best
            ablation score among the unpruned layers was taken (a model without refusal).
        candidates: one dict per evaluated candidate (position, layer, ablation_score,
            addition_score, kl, passed).
    """

    position: int
    layer: int
    direction: Any
    filtered: bool
    candidates: list[dict]


def select_direction(
    model: Any,
    tokenizer: Any,
    directions: Directions,
    harmful_val: Sequence[str],
    harmless_val: Sequence[str],
    fmt: PromptFormat,
    token_ids: Sequence[int],
    kl_threshold: float = 0.1,
    induce_threshold: float = 0.0,
    prune_layer_frac: float = 0.2,
    batch_size: int = 16,
) -> Selection:
    """Pick the candidate whose ablation most lowers refusal (Arditi et al. 2024, app. C).

    A candidate (position, layer) qualifies when its layer is not in the last
    ``prune_layer_frac`` of layers, adding it raises the mean refusal score on harmless
    prompts above ``induce_threshold``, and ablating it keeps the mean KL divergence on harmless
    prompts below ``kl_threshold``. Among those, the lowest mean refusal score on harmful prompts
    under ablation wins. If none qualifies (a model that does not refuse), the best ablation
    score is returned with ``filtered=False``; pruned layers are used only when every unpruned
    candidate is zero (tiny models, whose first layers see the same template tokens).
    """
    pad = _pad_id(tokenizer)
    harm_ids = encode(tokenizer, fmt, harmful_val)
    safe_ids = encode(tokenizer, fmt, harmless_val)
    base_safe = last_logprobs(model, safe_ids, batch_size, pad)
    max_layer = max(1, math.floor(directions.n_layers * (1 - prune_layer_frac)))
    cands = _evaluate_candidates(
        model,
        directions,
        range(max_layer),
        harm_ids,
        safe_ids,
        base_safe,
        token_ids,
        batch_size,
        pad,
    )
    if not cands:
        # Tiny models: the first layers' inputs at the template tokens are the same for every
        # prompt (zero difference), so fall back to the pruned layers rather than fail.
        cands = _evaluate_candidates(
            model, directions, range(max_layer, directions.n_layers), harm_ids, safe_ids,
            base_safe, token_ids, batch_size, pad,
        )  # fmt: skip
    for row in cands:
        row["passed"] = bool(
            row["layer"] < max_layer
            and math.isfinite(row["ablation_score"])
            and row["kl"] < kl_threshold
            and row["addition_score"] > induce_threshold
        )
    if not cands:
        raise DataError(
            "select_direction: harmful and harmless prompts give the same activations at every "
            "layer and position (all candidates zero or not finite); check the prompt sets differ."
        )
    passed = [c for c in cands if c["passed"]]
    pool = passed or cands
    best = min(pool, key=lambda c: (c["ablation_score"], c["layer"], c["position"]))
    p_idx = best["position"] + directions.n_positions
    return Selection(
        position=best["position"],
        layer=best["layer"],
        direction=directions.mean_diffs[p_idx, best["layer"]].clone(),
        filtered=bool(passed),
        candidates=cands,
    )


def _evaluate_candidates(
    model: Any,
    directions: Directions,
    layers: Sequence[int],
    harm_ids: list[list[int]],
    safe_ids: list[list[int]],
    base_safe: Any,
    token_ids: Sequence[int],
    batch_size: int,
    pad: int,
) -> list[dict]:
    """Ablation score, addition score and KL of every non-zero candidate in ``layers``."""
    import torch

    cands = []
    for p in range(directions.n_positions):
        for layer in layers:
            d = directions.mean_diffs[p, layer]
            if not torch.isfinite(d).all() or float(d.norm()) == 0.0:
                continue
            # Three passes per candidate: ablation on harmful (the objective), ablation on
            # harmless (side effects), addition on harmless (does it induce refusal?).
            with directional_ablation(model, d):
                abl = refusal_scores(last_logprobs(model, harm_ids, batch_size, pad), token_ids)
                kl = kl_divergence(base_safe, last_logprobs(model, safe_ids, batch_size, pad))
            with activation_addition(model, d, layer):
                add = refusal_scores(last_logprobs(model, safe_ids, batch_size, pad), token_ids)
            cands.append(
                {
                    "position": p - directions.n_positions,
                    "layer": layer,
                    "ablation_score": float(abl.mean()),
                    "addition_score": float(add.mean()),
                    "kl": float(kl.mean()),
                }
            )
    return cands


__all__ = [
    "PLAIN_TEMPLATE",
    "REFUSAL_TOKENS_BY_FAMILY",
    "Directions",
    "PromptFormat",
    "RefusalDirectionConfig",
    "Selection",
    "activation_addition",
    "collect_residuals",
    "decoder_layers",
    "directional_ablation",
    "encode",
    "filter_by_refusal",
    "kl_divergence",
    "last_logprobs",
    "left_padded_batches",
    "no_intervention",
    "prompt_format",
    "refusal_directions",
    "refusal_scores",
    "refusal_token_ids",
    "select_direction",
]
