"""Parsers with limits: JSON with bounded nesting and integer size, YAML with an alias budget.

Input files are user text. Python's `json` recurses once per nesting level (a line of 100,000
``[`` is a `RecursionError`) and refuses integers past 4,300 digits with a bare `ValueError`;
`yaml.safe_load` builds a "billion laughs" document of a few hundred bytes as shared references
that expand to billions of nodes when anything walks them. These loaders turn each case into a
`DataError` naming the file (and line) before anything downstream sees the value.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from sftlens.core._errors import DataError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MAX_YAML_ALIASES",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "loads_json",
    "loads_yaml",
]

MAX_JSON_DEPTH = 100
MAX_JSON_INT_DIGITS = 100
MAX_YAML_BYTES = 4 << 20
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 200_000


class InputTooBig(ValueError):
    """A document past a limit (raised inside a parser hook; callers name the place)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise InputTooBig(f"an integer of {len(text)} digits (at most {MAX_JSON_INT_DIGITS})")
    return int(text)


def _too_deep(obj: Any) -> bool:
    """Whether `obj` nests lists/objects deeper than `MAX_JSON_DEPTH` (iterative walk)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return False


def loads_json(text: str | bytes, where: str, what: str = "valid JSON") -> Any:
    """Parse JSON text with bounded nesting and integer size.

    Args:
        text: the JSON text (one document or one JSONL line).
        where: ``"file"`` or ``"file:line"``, named in errors.
        what: what the text should be, for the message (``"a JSON object"`` for a JSONL line).

    Raises:
        DataError: malformed JSON, nesting deeper than `MAX_JSON_DEPTH`, or an integer longer
            than `MAX_JSON_INT_DIGITS` digits.
        json.JSONDecodeError: never (turned into `DataError`).
    """
    try:
        obj = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not {what} ({e.msg}); fix or remove it.") from None
    except InputTooBig as e:
        raise DataError(f"{where}: {e}; store big numbers as strings.") from None
    except RecursionError:
        raise DataError(
            f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels; flatten the record."
        ) from None
    if isinstance(text, bytes):
        brackets = text.count(b"[") + text.count(b"{")
    else:
        brackets = text.count("[") + text.count("{")
    if brackets > MAX_JSON_DEPTH and _too_deep(obj):
        raise DataError(
            f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels; flatten the record."
        )
    return obj


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that counts aliases and the size of the document they expand to."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._weight: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise InputTooBig(
                    f"line {mark.line + 1}: more than {MAX_YAML_ALIASES} aliases (*name)"
                )
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.MappingNode):
            children = [c for pair in node.value for c in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        # An alias counts as everything it stands for: the size the document expands to.
        weight = 1 + sum(self._weight.get(id(c), 1) for c in children)
        self._weight[id(node)] = weight
        if weight > MAX_YAML_NODES:
            raise InputTooBig(
                f"line {node.start_mark.line + 1}: expands to more than {MAX_YAML_NODES} values "
                "through aliases"
            )
        return node


def loads_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load` with a size cap and an alias budget.

    Args:
        text: the YAML document.
        where: the file (or option) it came from, named in errors.

    Raises:
        DataError: a document over `MAX_YAML_BYTES`, more than `MAX_YAML_ALIASES` aliases, a
            document that expands past `MAX_YAML_NODES` values, or invalid YAML (with its line).
    """
    if len(text) > MAX_YAML_BYTES:
        raise DataError(
            f"{where}: {len(text)} characters of YAML (at most {MAX_YAML_BYTES}); "
            "a config this large is not a config."
        )
    try:
        return load_bounded_yaml(text)
    except InputTooBig as e:
        raise DataError(f"{where}: {e}; write the values out instead.") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(f"{where}{at}: not valid YAML ({getattr(e, 'problem', e)}).") from None
    except RecursionError:
        raise DataError(f"{where}: YAML nested too deeply; flatten it.") from None


def load_bounded_yaml(text: str) -> Any:
    """`yaml.safe_load` with the alias budget; raises `yaml.YAMLError` or `InputTooBig`."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
