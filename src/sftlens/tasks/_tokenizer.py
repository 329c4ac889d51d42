"""The toy world's tokenizer: byte-level BPE with single-digit numbers and a chat template.

Digits are split one by one so that the toy models see arithmetic at the digit level. The chat
template makes toy models go through the same `apply_chat_template` path as real chat models.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
SPECIAL_TOKENS = (PAD, BOS, EOS, USER, ASSISTANT)

# messages -> "<|user|>{prompt}\n<|assistant|>{response}<|eos|>"; the generation prompt ends
# at "<|assistant|>", so the model's completion starts right after it.
TOY_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "{{ m['content'] }}" + EOS + "\n"
    "{% else %}{{ m['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> Any:
    """Train a byte-level BPE tokenizer on `texts` and wrap it as a `PreTrainedTokenizerFast`.

    Args:
        texts: training text (the world's corpus); any text still encodes (byte fallback).
        vocab_size: target vocabulary size, special tokens included.
        min_frequency: minimum pair frequency for a merge.

    Returns:
        A `PreTrainedTokenizerFast` with bos/eos/pad set and the toy chat template; save it with
        ``save_pretrained(dir)`` and load it back with ``PreTrainedTokenizerFast.from_pretrained``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[USER, ASSISTANT],
    )
    fast.chat_template = TOY_CHAT_TEMPLATE
    return fast


def format_prompt(tokenizer: Any, prompt: str, chat: bool | None = None) -> str:
    """The text a model sees before its response.

    With a chat template (and ``chat`` not False): the template applied to one user turn with
    the generation prompt. Without one (base models): the prompt followed by a newline.
    """
    use_chat = getattr(tokenizer, "chat_template", None) is not None if chat is None else chat
    if use_chat:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt + "\n"
