"""The stage runner: a graph of stages, fingerprints in the manifest, skip, resume, dry-run.

A stage declares its dependencies, its parameters and its outputs (paths in the run folder).
Its *key* is the fingerprint of its parameters and of the recorded output fingerprints of its
dependencies. A stage is skipped when the manifest holds the same key and its outputs still
exist with the fingerprints recorded when it finished. The manifest is rewritten atomically as
each stage starts and ends, so a crash or Ctrl-C leaves every finished stage recorded; a rerun
skips those and resumes at the interrupted one (stages resume their own partial work, e.g.
training restarts from its last checkpoint).
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from sftlens.core import (
    ConfigError,
    SftlensError,
    environment,
    fingerprint,
    interrupt_point,
    path_fingerprint,
    read_json,
    write_json,
)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


class StageUnavailable(SftlensError):
    """A stage needs a package function that is not installed or not importable."""


@dataclasses.dataclass
class Stage:
    """One node of the graph.

    Attributes:
        name: unique id, e.g. ``sft.strong-cot``.
        fn: called with a `StageContext`; writes the outputs (atomically).
        deps: names of stages whose outputs this one reads.
        params: JSON-serialisable parameters; part of the stage key.
        outputs: paths relative to the run folder that the stage writes.
        requires: ``"module:attr"`` strings the stage calls; checked before anything runs.
        cost: relative cost estimate, for the run's ETA.
    """

    name: str
    fn: Callable[[StageContext], Any]
    deps: tuple[str, ...] = ()
    params: dict = dataclasses.field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    cost: float = 1.0


@dataclasses.dataclass
class PlanItem:
    """What the runner will do with one stage, and why."""

    stage: Stage
    action: str  # "run" | "skip" | "blocked"
    reason: str


class Progress:
    """Prints ``[i/n] stage  step k/K  elapsed  ETA`` lines (in place on a terminal)."""

    def __init__(self, total_cost: float, stream: TextIO | None = None, min_interval: float = 2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.total_cost = max(total_cost, 1e-9)
        self.done_cost = 0.0
        self.t0 = time.monotonic()
        self.min_interval = min_interval
        self._last = 0.0
        self._stage: Stage | None = None
        self._stage_t0 = 0.0
        self._label = ""
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, index: int, n: int, stage: Stage) -> None:
        self._stage = stage
        self._stage_t0 = time.monotonic()
        self._label = f"[{index}/{n}] {stage.name}"
        self._emit(f"{self._label}  started", force=True)

    def step(self, done: int, total: int, unit: str = "step") -> None:
        """Report progress inside the current stage (called by stage functions)."""
        if self._stage is None:
            return
        now = time.monotonic()
        frac = done / total if total else 0.0
        stage_eta = (now - self._stage_t0) / frac * (1 - frac) if frac > 0 else None
        run_eta = self._run_eta(frac)
        parts = [self._label, f"{unit} {done}/{total}"]
        if stage_eta is not None:
            parts.append(f"stage ETA {_hms(stage_eta)}")
        if run_eta is not None:
            parts.append(f"run ETA {_hms(run_eta)}")
        self._emit("  ".join(parts), force=done >= total)

    def finish(self, stage: Stage, seconds: float) -> None:
        self.done_cost += stage.cost
        eta = self._run_eta(0.0)
        tail = f"  run ETA {_hms(eta)}" if eta is not None and eta > 0 else ""
        self._emit(f"{self._label}  done in {_hms(seconds)}{tail}", force=True, newline=True)
        self._stage = None

    def note(self, text: str) -> None:
        self._emit(text, force=True, newline=True)

    def _run_eta(self, stage_frac: float) -> float | None:
        done = self.done_cost + (self._stage.cost * stage_frac if self._stage else 0.0)
        if done <= 0:
            return None
        elapsed = time.monotonic() - self.t0
        return elapsed / done * max(self.total_cost - done, 0.0)

    def _emit(self, text: str, force: bool = False, newline: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        if self._tty:
            end = "\n" if newline else ""
            self.stream.write("\r\033[K" + text + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


@dataclasses.dataclass
class StageContext:
    """What a stage function gets: the run folder, its parameters, and a progress callback."""

    run_dir: Path
    stage: Stage
    progress: Progress
    spec: Any = None
    resuming: bool = False

    @property
    def params(self) -> dict:
        return self.stage.params

    def path(self, rel: str | Path) -> Path:
        """An absolute path inside the run folder (parent directories created)."""
        p = self.run_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def step(self, done: int, total: int, unit: str = "step") -> None:
        self.progress.step(done, total, unit)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_graph(stages: Sequence[Stage]) -> None:
    """Raise `ConfigError` on a duplicate stage, an unknown dependency, or a cycle / bad order."""
    seen: set[str] = set()
    for s in stages:
        if s.name in seen:
            raise ConfigError(f"stage {s.name!r} is declared twice.")
        for d in s.deps:
            if d not in seen:
                known = any(x.name == d for x in stages)
                what = "comes after it" if known else "does not exist"
                raise ConfigError(f"stage {s.name!r} depends on {d!r}, which {what}.")
        seen.add(s.name)


def missing_requirement(req: str) -> str | None:
    """None if ``module:attr`` imports, else a one-line reason."""
    mod_name, _, attr = req.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        return f"cannot import {mod_name} ({e})"
    if attr and not hasattr(mod, attr):
        return f"{mod_name} has no {attr!r} yet"
    return None


class Manifest:
    """The run's ``manifest.json``: versions, seeds, and per-stage keys and output fingerprints."""

    def __init__(self, run_dir: Path, meta: dict | None = None) -> None:
        self.path = run_dir / MANIFEST
        if self.path.is_file():
            self.data = read_json(self.path)
            if not isinstance(self.data, dict) or "stages" not in self.data:
                raise ConfigError(f"{self.path}: not a sftlens manifest; move it away and rerun.")
        else:
            self.data = {"manifest_version": MANIFEST_VERSION, "created": _now(), "stages": {}}
        self.data.update(meta or {})
        self.data["environment"] = environment()

    @property
    def stages(self) -> dict:
        return self.data["stages"]

    def save(self) -> None:
        self.data["updated"] = _now()
        write_json(self.path, self.data)


def _remove_outputs(run_dir: Path, stage: Stage) -> None:
    for o in stage.outputs:
        p = run_dir / o
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _outputs_fp(run_dir: Path, stage: Stage) -> dict[str, str]:
    return {o: path_fingerprint(run_dir / o) for o in stage.outputs}


def stage_key(stage: Stage, manifest: Manifest, planned: dict[str, str]) -> str:
    """Fingerprint of the stage's params and its dependencies' outputs.

    A dependency that will rerun in this invocation has unknown outputs; its planned key stands
    in (so the dependant is planned to run too).
    """
    deps = {}
    for d in stage.deps:
        rec = manifest.stages.get(d, {})
        deps[d] = planned.get(d) or rec.get("outputs_fp")
    return fingerprint({"params": stage.params, "deps": deps})


def plan(run_dir: Path, stages: Sequence[Stage], force: Sequence[str] = ()) -> list[PlanItem]:
    """Decide, without running anything, which stages run and which are skipped."""
    run_dir = Path(run_dir)
    check_graph(stages)
    man = Manifest(run_dir) if (run_dir / MANIFEST).is_file() else None
    rerun: dict[str, str] = {}  # stages that will run -> placeholder key for dependants
    items = []
    for s in stages:
        reason = _skip_reason(run_dir, s, man, rerun, force)
        if reason is None:
            items.append(PlanItem(s, "skip", "outputs exist; inputs and config unchanged"))
            continue
        rerun[s.name] = "rerun:" + fingerprint([s.name, s.params])
        blocked = next((m for r in s.requires if (m := missing_requirement(r))), None)
        if blocked:
            items.append(PlanItem(s, "blocked", blocked))
        else:
            items.append(PlanItem(s, "run", reason))
    return items


def _skip_reason(
    run_dir: Path, s: Stage, man: Manifest | None, rerun: dict[str, str], force: Sequence[str]
) -> str | None:
    """None if `s` can be skipped, else why it must run."""
    if any(s.name == f or s.name.startswith(f + ".") for f in force):
        return "forced"
    if man is None:
        return "new run"
    rec = man.stages.get(s.name)
    if rec is None:
        return "not run yet"
    if rec.get("status") != "done":
        return "interrupted; resuming"
    if any(d in rerun for d in s.deps):
        return "an input stage reruns"
    if rec.get("key") != stage_key(s, man, {}):
        return "config or inputs changed"
    for o, fp in rec.get("outputs_fp", {}).items():
        if not (run_dir / o).exists():
            return f"output {o} is missing"
        if path_fingerprint(run_dir / o) != fp:
            return f"output {o} changed since it was written"
    return None


def format_plan(items: Sequence[PlanItem]) -> str:
    """The dry-run table: one line per stage with action, reason and outputs."""
    width = max((len(i.stage.name) for i in items), default=10)
    lines = []
    for n, i in enumerate(items, 1):
        outs = ", ".join(i.stage.outputs) if i.stage.outputs else "-"
        lines.append(f"{n:>3}. {i.action:<7} {i.stage.name:<{width}}  {i.reason}  -> {outs}")
    runs = sum(i.action == "run" for i in items)
    skips = sum(i.action == "skip" for i in items)
    blocked = sum(i.action == "blocked" for i in items)
    lines.append(f"{runs} to run, {skips} to skip, {blocked} blocked.")
    return "\n".join(lines)


def run_stages(
    run_dir: str | Path,
    stages: Sequence[Stage],
    *,
    force: Sequence[str] = (),
    meta: dict | None = None,
    spec: Any = None,
    stream: TextIO | None = None,
) -> list[PlanItem]:
    """Run the graph: skip up-to-date stages, run the rest in order, record each in the manifest.

    Args:
        run_dir: the run folder (created).
        stages: stages in dependency order.
        force: stage names (or prefixes such as ``sft``) to rerun regardless of fingerprints.
        meta: extra top-level manifest fields (name, seed, scale, spec fingerprint).
        spec: passed to every stage's context.
        stream: where progress goes (stderr by default).

    Returns:
        The plan that was executed.

    Raises:
        StageUnavailable: a stage that must run needs a package function that is missing; raised
            before anything runs, naming the stage and the reason.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    items = plan(run_dir, stages, force)
    blocked = [i for i in items if i.action == "blocked"]
    if blocked:
        b = blocked[0]
        more = f" (and {len(blocked) - 1} more stages)" if len(blocked) > 1 else ""
        raise StageUnavailable(f"stage {b.stage.name!r} cannot run: {b.reason}{more}.")
    man = Manifest(run_dir, meta)
    man.save()
    todo = [i for i in items if i.action == "run"]
    progress = Progress(sum(i.stage.cost for i in todo), stream=stream)
    if len(todo) < len(items):
        progress.note(f"{len(items) - len(todo)} of {len(items)} stages up to date; skipping them.")
    k = 0
    for s in stages:
        # Decide again with the live manifest: a rerun input that wrote the same bytes leaves
        # its dependants up to date.
        reason = _skip_reason(run_dir, s, man, {}, force)
        if reason is None:
            continue
        k += 1
        resuming = reason.startswith("interrupted")
        if not resuming:
            # Outputs of another config must not be mistaken for partial work of this one.
            _remove_outputs(run_dir, s)
        key = stage_key(s, man, {})
        prev = man.stages.get(s.name, {})
        man.stages[s.name] = {
            "key": key,
            "status": "running",
            "started": _now(),
            "params": s.params,
            "deps": list(s.deps),
            "attempts": int(prev.get("attempts", 0)) + 1,
        }
        man.save()
        progress.start(k, max(len(todo), k), s)
        interrupt_point("run.stage")
        t0, c0 = time.monotonic(), time.process_time()
        s.fn(StageContext(run_dir, s, progress, spec=spec, resuming=resuming))
        seconds = time.monotonic() - t0
        missing = [o for o in s.outputs if not (run_dir / o).exists()]
        if missing:
            raise SftlensError(f"stage {s.name!r} finished without writing {missing[0]}.")
        man.stages[s.name].update(
            status="done",
            finished=_now(),
            seconds=round(seconds, 2),
            # CPU time of all threads: an upper bound on the wall time on an idle machine.
            cpu_seconds=round(time.process_time() - c0, 2),
            outputs_fp=_outputs_fp(run_dir, s),
        )
        man.save()
        progress.finish(s, seconds)
    return items
