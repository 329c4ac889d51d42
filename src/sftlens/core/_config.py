"""Typed configs: dataclasses loaded from YAML, unknown keys rejected, contradictions named.

A stage's config is a dataclass that subclasses `Config`. Every field has a default and a help
string (``field(default=..., metadata={"help": "..."})``, or the `option` shorthand). Loading
checks types, rejects unknown keys with a did-you-mean, applies ``key.sub=value`` overrides from
the command line, and calls `validate()` for cross-field contradictions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from sftlens.core._bounded import InputTooBig, load_bounded_yaml
from sftlens.core._errors import ConfigError
from sftlens.core._io import read_yaml, write_text

__all__ = ["Config", "option", "parse_overrides"]

C = TypeVar("C", bound="Config")


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None) -> Any:
    """A config field with a default and a help string (``factory`` for mutable defaults)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check (and lightly coerce) `value` against the annotation `tp`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[-1] if errors else f"{where}: invalid value {value!r}.")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where}: {value!r} is not allowed; use one of {', '.join(map(repr, allowed))}."
            )
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        out = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}.")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} keys, got {value!r}.")
        return tp.from_dict(value, where=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}.")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}.")
            return number
        raise ConfigError(f"{where}: expected a number, got {value!r}.")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}.")
    if tp in (Path, os.PathLike):
        if isinstance(value, (str, os.PathLike)):
            return str(value)
        raise ConfigError(f"{where}: expected a path, got {value!r}.")
    return value


def parse_overrides(items: list[str] | tuple[str, ...] | None) -> dict:
    """Turn ``["train.lr=3e-4", "seed=1"]`` into a nested dict (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r}: write it as key=value, e.g. lr=3e-4.")
        key, raw = item.split("=", 1)
        try:
            value = load_bounded_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        except (InputTooBig, RecursionError) as e:
            raise ConfigError(f"override {key.strip()!r}: {e}; write the value out.") from None
        # YAML reads 3e-4 as a string (no dot): accept it as a number.
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value) if any(c in value for c in ".eE") else int(value)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict, upd: dict) -> dict:
    out = dict(base)
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclasses.dataclass
class Config:
    """Base class of every stage config (a dataclass; subclasses are dataclasses too)."""

    def validate(self) -> None:
        """Raise `ConfigError` naming contradictory fields. Subclasses extend this."""

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Map field name -> help string."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls: type[C], data: dict | None, where: str = "") -> C:
        """Build and validate a config from a mapping; unknown keys are an error."""
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        prefix = f"{where}." if where else ""
        unknown = [k for k in data if k not in fields]
        if unknown:
            k = unknown[0]
            close = difflib.get_close_matches(str(k), list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown key '{prefix}{k}' in {cls.__name__}.{hint} "
                f"Known keys: {', '.join(sorted(fields))}."
            )
        kwargs = {}
        for name, value in data.items():
            kwargs[name] = _coerce(value, hints[name], f"{prefix}{name}")
        missing = [
            n
            for n, f in fields.items()
            if n not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ConfigError(f"missing required key '{prefix}{missing[0]}' in {cls.__name__}.")
        obj = cls(**kwargs)
        obj.validate()
        return obj

    @classmethod
    def load(
        cls: type[C],
        path: str | os.PathLike | None = None,
        overrides: list[str] | dict | None = None,
    ) -> C:
        """Load from a YAML file (optional), apply ``key=value`` overrides, validate."""
        data: dict = {}
        if path is not None:
            raw = read_yaml(path)
            if raw is None:
                raw = {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping of config keys at the top level.")
            data = raw
        if overrides:
            upd = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
            data = _merge(data, upd)
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            if path is not None and not str(e).startswith(str(path)):
                raise ConfigError(f"{path}: {e}") from None
            raise

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with some fields changed."""
        return type(self).from_dict(_merge(self.to_dict(), changes))

    def to_dict(self) -> dict:
        """A plain, YAML/JSON-serialisable dict (nested configs as dicts)."""

        def conv(v: Any) -> Any:
            if isinstance(v, Config):
                return v.to_dict()
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, Path):
                return str(v)
            return v

        return {f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the resolved config as YAML (atomically)."""
        return write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    def describe(self) -> str:
        """One line per field: name, type, default and help (for docs and --help)."""
        hints = typing.get_type_hints(type(self))
        lines = []
        for f in dataclasses.fields(self):
            lines.append(
                f"{f.name} ({_type_name(hints[f.name])}) = {getattr(self, f.name)!r}: "
                f"{f.metadata.get('help', '')}"
            )
        return "\n".join(lines)
