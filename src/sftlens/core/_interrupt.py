"""Ctrl-C: make sure it reaches the process, and let tests deliver it at named points.

A process started with SIGINT ignored (a background job of a non-interactive shell, some CI
runners and process supervisors) inherits the ignore, and Python then never raises
`KeyboardInterrupt`: a Ctrl-C or ``kill -INT`` is silently lost and a long run goes on.
`enable_ctrl_c` undoes that at the CLI's entry point.

`interrupt_point` marks the places where a long run spends its time (a training step, the data
loader, the tagging worker pool, the spaCy pipe, a report write). When the environment variable
``SFTLENS_TEST_INTERRUPT_AT`` names the point, the process sends itself a real SIGINT there, so
a test exercises exactly what a user's Ctrl-C does, at a known place instead of after a timed
sleep. Unset (always, outside tests), a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

INTERRUPT_ENV = "SFTLENS_TEST_INTERRUPT_AT"

# Every point in the code, so a test can check each one (and a typo in the env var fails).
INTERRUPT_POINTS = (
    "train.data",  # the data loader: a batch is being assembled
    "train.step",  # right after an optimizer step
    "tag.pool",  # the parent of the tagging worker pool, between chunks
    "tag.spacy",  # inside the spaCy pipe, between documents
    "report.write",  # while the report files are being written
    "run.stage",  # the experiment runner, as a stage starts
)

_seen: dict[str, int] = {}


def enable_ctrl_c() -> None:
    """Restore Python's Ctrl-C handler when SIGINT was inherited as ignored (main thread only)."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupt_point(name: str) -> None:
    """Send this process SIGINT here if ``SFTLENS_TEST_INTERRUPT_AT`` names this point.

    The value is ``POINT`` (the first time the point is reached) or ``POINT:N`` (the N-th time
    in this process; counted per value, so each value fires once per process).
    """
    target = os.environ.get(INTERRUPT_ENV)
    if not target:
        return
    point, _, nth = target.partition(":")
    if point != name:
        return
    _seen[target] = _seen.get(target, 0) + 1
    if _seen[target] == int(nth or 1):
        # raise_signal goes through the process's real SIGINT disposition (and checks for
        # the handler right away): an ignored SIGINT is lost here exactly as a user's would be.
        signal.raise_signal(signal.SIGINT)
