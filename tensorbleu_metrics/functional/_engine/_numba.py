"""Numba's start for the engine, once per process: its registries set up, and garbage collected after a compile.

Imported by ``kernels`` on the engine's first use (this module imports Numba).
"""

from __future__ import annotations

import gc

from numba.core import event

_PACKAGE = __name__.split(".")[0] + "."


class _CollectAfterCompile(event.Listener):
    """Runs the cyclic garbage collector when a compile of one of this package's kernels ends.

    A compile leaves many cycles of compiler objects whose finalizers release LLVM handles through ctypes, which
    lets go of the GIL. Left to the interpreter's last collection at exit, they let threads that wait for the GIL
    (torch's gloo workers releasing tensors, in a DDP rank) take it while the interpreter finalizes, and such a
    thread aborts the process; collected right after the compile, they are gone long before. Left alone where
    the user turned the collector off.
    """

    def __init__(self) -> None:
        self._depth = 0  # compiles nest (a kernel's callees); Numba runs one compile at a time

    def on_start(self, event: event.Event) -> None:
        self._depth += 1

    def on_end(self, event: event.Event) -> None:
        self._depth -= 1
        dispatcher = event.data.get("dispatcher") if isinstance(event.data, dict) else None
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if self._depth == 0 and module.startswith(_PACKAGE) and gc.isenabled():
            gc.collect()


_listener: _CollectAfterCompile | None = None


def start() -> None:
    """Set up Numba's typing and lowering registries (its first compiled call would) and the listener above."""
    global _listener
    if _listener is None:  # once per process (kernels() may start the engine again after a failed start)
        _listener = _CollectAfterCompile()
        event.register("numba:compile", _listener)
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    except (ImportError, AttributeError):  # another Numba's internals: its first call sets them up instead
        pass


__all__ = ["start"]
