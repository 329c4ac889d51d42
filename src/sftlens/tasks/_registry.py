"""The task registry: a config string (``countdown``, ``route``, ...) picks a task."""

from __future__ import annotations

from typing import Any, Protocol

from sftlens.core import Registry


class Task(Protocol):
    """What every task provides (problems, SFT traces in styles, and scoring)."""

    name: str
    styles: tuple[str, ...]

    def generate(self, n: int, seed: int, split: str = "train", **knobs: Any) -> list[dict]:
        """`n` problem records (Problem contract, no response), deterministic in `seed`."""
        ...

    def render(self, problem: dict, style: str, seed: int) -> dict:
        """The problem with ``response`` and ground-truth ``events`` in the given style."""
        ...

    def score(self, problem: dict, completion: str) -> dict:
        """Score a completion: at least ``correct`` (bool) and ``parsed_answer`` (str | None)."""
        ...


TASKS: Registry[Any] = Registry("task")


def get_task(name: str) -> Task:
    """The registered task called `name` (an instance); lists known names on a miss."""
    return TASKS.get(name)()
