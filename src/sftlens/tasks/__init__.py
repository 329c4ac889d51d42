"""The task world: Countdown, a cross-domain search task, the base corpus, refusal prompts,
real-data loaders, and the toy tokenizer."""

from sftlens.tasks._choice import ChoiceTask, load_choice_problems, parse_choice, score_choice
from sftlens.tasks._corpus import DEFAULT_MIX, build_base_corpus, chat_text
from sftlens.tasks._countdown import CountdownTask  # registers countdown, countdown-hard
from sftlens.tasks._countdown_checks import countdown_behaviour_checks
from sftlens.tasks._countdown_parse import parse_countdown_trace
from sftlens.tasks._countdown_solve import is_dead_end, solve_countdown
from sftlens.tasks._countdown_verify import extract_answer, verify_countdown
from sftlens.tasks._files import load_problem_file
from sftlens.tasks._instructions import (
    HarmfulTask,
    HarmlessTask,
    instruction_prompts,
    load_instructions,
)
from sftlens.tasks._loaders import load_sft_records
from sftlens.tasks._math import MathTask, load_math_problems, parse_fields, score_math
from sftlens.tasks._registry import TASKS, Task, get_task
from sftlens.tasks._route import RouteTask, score_route
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
    "ChoiceTask",
    "CountdownTask",
    "DEFAULT_MIX",
    "EOS",
    "PAD",
    "TASKS",
    "TOY_CHAT_TEMPLATE",
    "USER",
    "build_base_corpus",
    "build_tokenizer",
    "chat_text",
    "countdown_behaviour_checks",
    "extract_answer",
    "is_dead_end",
    "parse_countdown_trace",
    "solve_countdown",
    "verify_countdown",
    "format_prompt",
    "get_task",
    "HarmfulTask",
    "HarmlessTask",
    "instruction_prompts",
    "load_choice_problems",
    "load_instructions",
    "load_math_problems",
    "load_problem_file",
    "load_sft_records",
    "MathTask",
    "parse_choice",
    "parse_fields",
    "RouteTask",
    "score_choice",
    "score_math",
    "score_route",
    "Task",
]
