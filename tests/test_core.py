"""sftlens.core: atomic writes, line-checked JSONL, typed configs, registries, fingerprints."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import pytest

from sftlens.core import (
    Config,
    ConfigError,
    DataError,
    Registry,
    append_jsonl,
    atomic_dir,
    atomic_path,
    fingerprint,
    option,
    read_jsonl,
    write_jsonl,
)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_renames_only_when_complete(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("x")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "x"


def test_read_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(DataError, match=r"d.jsonl:3: not a JSON object"):
        list(read_jsonl(p))
    p.write_text('{"a": 1}\n{"b": 2}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: missing key 'a'"):
        list(read_jsonl(p, required=["a"]))
    p.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        list(read_jsonl(p))
    with pytest.raises(DataError, match="file not found"):
        list(read_jsonl(tmp_path / "missing.jsonl"))


def test_append_jsonl_drops_a_cut_tail_and_resumes(tmp_path):
    p = tmp_path / "t.jsonl"
    write_jsonl(p, [{"i": 0}, {"i": 1}])
    with open(p, "a") as f:
        f.write('{"i": 2, "tru')  # a crash mid-line
    assert [r["i"] for r in read_jsonl(p, allow_partial_tail=True)] == [0, 1]
    append_jsonl(p, [{"i": 2}])
    assert [r["i"] for r in read_jsonl(p)] == [0, 1, 2]


@dataclasses.dataclass
class _Inner(Config):
    lr: float = option(1e-3, "learning rate")
    kind: Literal["a", "b"] = option("a", "which kind")


@dataclasses.dataclass
class _Outer(Config):
    name: str = option("run", "run name")
    steps: int = option(10, "optimizer steps")
    inner: _Inner = option(factory=_Inner, help="nested")
    tags: list[str] = option(factory=list, help="free tags")

    def validate(self) -> None:
        if self.steps <= 0:
            raise ConfigError(f"steps={self.steps}: must be positive.")


def test_config_rejects_unknown_keys_with_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key 'step'.*Did you mean 'steps'"):
        _Outer.from_dict({"step": 3})
    with pytest.raises(ConfigError, match=r"unknown key 'inner.lrr'"):
        _Outer.from_dict({"inner": {"lrr": 1}})


def test_config_types_literals_and_contradictions():
    with pytest.raises(ConfigError, match=r"inner.kind: 'c' is not allowed"):
        _Outer.from_dict({"inner": {"kind": "c"}})
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        _Outer.from_dict({"steps": "many"})
    with pytest.raises(ConfigError, match="must be positive"):
        _Outer.from_dict({"steps": 0})


def test_config_yaml_overrides_and_roundtrip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ninner:\n  lr: 0.1\n")
    cfg = _Outer.load(p, overrides=["inner.lr=3e-4", "steps=7", "tags=[a, b]"])
    assert (cfg.name, cfg.steps, cfg.inner.lr, cfg.tags) == ("x", 7, 3e-4, ["a", "b"])
    cfg.save(tmp_path / "resolved.yaml")
    assert _Outer.load(tmp_path / "resolved.yaml") == cfg
    p.write_text("name: [unclosed\n")
    with pytest.raises(DataError, match=r"c.yaml:\d+: not valid YAML"):
        _Outer.load(p)


def test_registry_refuses_duplicates_and_lists_names():
    reg: Registry[int] = Registry("probe kind")
    reg.add("logreg", 1)
    with pytest.raises(ValueError):
        reg.add("logreg", 2)
    with pytest.raises(ConfigError, match="known: logreg"):
        reg.get("lda")


def test_fingerprint_is_order_independent_for_keys():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert json.loads(json.dumps({"x": fingerprint(1)}))
