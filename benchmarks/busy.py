"""Busy-looping processes beside a measurement: ``with busy_processes(2): ...``.

Where rewards are scored in practice the CPU is shared (verl's CPU reward workers, data-loader workers beside
training). Each busy process is a fresh interpreter (spawned, not forked: none of the caller's threads, imports
or memory) running a tight pure-Python loop, pinned to no core, at the default priority. The context manager
returns once every process has reported that its loop is running, and kills them all on exit, whether the block
ends normally, raises or is interrupted. A busy process also stops by itself once its parent is gone, so that
a benchmark killed outright does not leave cores spinning.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

START_TIMEOUT_S = 60.0

# the loop checks every few million iterations whether its parent still exists (re-parented: it does not)
_LOOP = """
import os, sys
parent = os.getppid()
sys.stdout.write("running\\n")
sys.stdout.flush()
while os.getppid() == parent:
    for _ in range(2_000_000):
        pass
"""


def _start(count: int, procs: list[subprocess.Popen]) -> None:
    """Start ``count`` processes, appending each to ``procs`` at once (a failed start leaves none untracked)."""
    for _ in range(count):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-S", "-c", _LOOP],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the terminal reaches the caller, which kills them in order
            )
        )


def _wait_running(procs: list[subprocess.Popen], timeout_s: float) -> None:
    """Block until each process has written its line (its loop starts right after), or raise."""
    waiting = {p.stdout.fileno(): p for p in procs if p.stdout is not None}
    deadline = time.monotonic() + timeout_s
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"{len(waiting)} of {len(procs)} busy processes did not start within {timeout_s} s")
        ready, _, _ = select.select(list(waiting), [], [], min(left, 1.0))
        for fd in ready:
            proc = waiting.pop(fd)
            line = proc.stdout.readline() if proc.stdout is not None else b""
            if line.strip() != b"running":
                raise RuntimeError(f"busy process {proc.pid} ended before running (exit code {proc.poll()})")
    dead = [p.pid for p in procs if p.poll() is not None]
    if dead:
        raise RuntimeError(f"busy processes {dead} ended right after starting")


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def busy_processes(count: int, timeout_s: float = START_TIMEOUT_S) -> Iterator[list[int]]:
    """Run ``count`` busy-looping processes for the duration of the block; yields their process IDs.

    ``count`` 0 yields an empty list and starts nothing.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    procs: list[subprocess.Popen] = []
    try:
        _start(count, procs)
        _wait_running(procs, timeout_s)
        yield [p.pid for p in procs]
    finally:
        _stop(procs)


def busy_count(text: str) -> int:
    """``--busy`` values: a non-negative integer, or ``cores`` for ``os.cpu_count()``."""
    if text.strip().lower() in ("cores", "cpus"):
        return os.cpu_count() or 1
    value = int(text)
    if value < 0:
        raise ValueError(f"--busy must be >= 0, got {value}")
    return value
