"""The task world: Countdown, a cross-domain search task, the base corpus, refusal prompts,
real-data loaders, and the toy tokenizer."""

from sftlens.tasks._registry import TASKS, Task, get_task
from sftlens.tasks._tokenizer import (
    ASSISTANT,
    BOS,
    EOS,
    PAD,
    TOY_CHAT_TEMPLATE,
    USER,
    build_tokenizer,
    format_prompt,
)

__all__ = [
    "ASSISTANT",
    "BOS",
    "EOS",
    "PAD",
    "TASKS",
    "TOY_CHAT_TEMPLATE",
    "USER",
    "Task",
    "build_tokenizer",
    "format_prompt",
    "get_task",
]
