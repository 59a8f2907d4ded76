"""Timing, peak memory and agreement of one implementation at one grid point.

CPU: each (implementation, grid point) runs in its own worker process, forked from a ``forkserver`` that has
already imported torch and the peers (so a measurement costs a fork, not seconds of imports, and the main
process can use CUDA). The worker builds the seeded inputs, records its resident set size (RSS) as the
baseline, resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), times the calls, then reads the
peak RSS (``VmHWM``; ``ru_maxrss`` where /proc is missing): peak memory = peak RSS - baseline RSS. The
parent watches the worker: a call running longer than the time budget, or an RSS above baseline + memory
budget, kills it ("over budget"); the worker also caps its address space (RLIMIT_AS) so that an allocation
past the memory budget fails instead of swapping the shared machine.

CUDA: measured in the main process; ``torch.cuda.synchronize()`` before and after every timed call; peak
memory is ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus what was
allocated before the call (the inputs).

Repeats: ``warmup`` untimed calls, and more until ``warmup_s`` seconds of them have run (a worker is a fresh
fork: its first calls pay first touches of memory and code, which dominate a call's time at RL-sized batches;
a call slower than ``SLOW_CALL_S`` ends the warm-up and counts as the first timed call: nothing warms up over
seconds; ``warmup=0`` means no warm-up at all), then timed calls until ``repeats`` are done, cut so that
the timed calls of one point take about ``point_time`` seconds, but at least ``min(MIN_REPEATS, repeats)``.
A first call slower than the time budget ends the point: "over time budget" with that time as a lower bound.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing as mp
import os
import resource
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

SLOW_CALL_S = 1.0
WARMUP_S = 0.2
MIN_REPEATS = 3
GRACE_S = 0.5  # the parent kills a worker whose call has run for budget + GRACE_S
READY_TIMEOUT_S = 300.0  # building the inputs (and the agreement reference) must finish within this

OK = "ok"
OVER_TIME = "over time budget"
OVER_MEMORY = "over memory budget"
SKIPPED = "skipped: over budget at a smaller point"
ERROR = "error"


@dataclass
class Task:
    impl: str
    device: str
    batch_size: int
    length: int
    num_refs: int
    vocab: int
    seed: int
    warmup: int
    repeats: int
    time_budget_s: float
    mem_budget_bytes: int | None
    point_time_s: float
    agreement: bool = True
    # seconds of untimed calls at least, when warmup > 0 (WARMUP_S)
    warmup_s: float = WARMUP_S
    # the module holding IMPLS (and optionally its own ``agreement``): BLEU's by default, another metric family's
    registry: str = "benchmarks.impls"


def _impls(task: Task) -> dict[str, Any]:
    """The implementations of the task's registry."""
    return importlib.import_module(task.registry).IMPLS


def _agreement(task: Task) -> Any:
    """The registry's agreement check, or BLEU's (:func:`agreement`)."""
    return getattr(importlib.import_module(task.registry), "agreement", agreement)


# ------------------------------------------------------------ memory helpers
def _status_bytes(field: str, pid: int | str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_rss(pid: int | str = "self") -> int | None:
    rss = _status_bytes("VmRSS", pid)
    if rss is None:
        try:
            import psutil

            proc = psutil.Process() if pid == "self" else psutil.Process(int(pid))
            rss = int(proc.memory_info().rss)
        except Exception:
            rss = None
    return rss


def reset_peak_rss() -> bool:
    """Set this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if os.uname().sysname == "Darwin" else maxrss * 1024)


# ------------------------------------------------------------ repeats
def _run_calls(fn: Any, task: Task, budget_s: float, sync: Any, notify: Any) -> tuple[str, list[float], Any]:
    """Warm-up and timed calls. Returns (status, times in seconds, last output)."""
    times: list[float] = []
    out = None
    calls = 0
    warm_left = task.warmup
    # the warm-up also lasts task.warmup_s seconds (see the module's docstring)
    warm_until = time.perf_counter() + task.warmup_s if task.warmup > 0 else 0.0
    target = task.repeats
    while len(times) < target:
        notify(calls)
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        dt = time.perf_counter() - t0
        calls += 1
        if dt > budget_s and not times:
            return OVER_TIME, [dt], out
        if (warm_left > 0 or time.perf_counter() < warm_until) and dt < SLOW_CALL_S:
            warm_left -= 1
            continue
        warm_left, warm_until = 0, 0.0  # ended (by time, count or a slow call): the calls from here are timed
        times.append(dt)
        if len(times) == 1:
            fit = int(task.point_time_s / max(dt, 1e-9))
            target = min(task.repeats, max(min(MIN_REPEATS, task.repeats), fit))
    return OK, times, out


# ------------------------------------------------------------ agreement
_CPU_REFERENCE: dict[tuple, np.ndarray] = {}


def agreement(
    impl_name: str, batch: Any, scores: np.ndarray, device: str, point: tuple | None = None
) -> dict[str, Any]:
    """Largest |peer - ours| under the matching options; for this project's CUDA rows: |CUDA - CPU|.

    ``point`` (the grid point) caches the CPU reference of the CUDA rows within the process.
    """
    import torch

    from benchmarks.impls import IMPLS, ours_scores

    impl = IMPLS[impl_name]
    if impl.is_ours:
        if device == "cpu":
            return {"agreement_with": "reference", "max_abs_diff": None}
        ref = _CPU_REFERENCE.get((point, impl.level)) if point is not None else None
        if ref is None:
            # one CPU run per point gives both levels' references (bleu_from_stats of the stats / their sum)
            from benchmarks.data import PAD_ID
            from tensorbleu_metrics.functional import bleu_from_stats, bleu_stats

            cpu = batch.to("cpu")
            stats = bleu_stats(cpu.preds, cpu.target_for_ours(), pad_id=PAD_ID)
            refs = {
                "sentence": bleu_from_stats(stats, dtype=torch.float64).numpy(),
                "corpus": bleu_from_stats(stats.sum(), dtype=torch.float64).reshape(-1).numpy(),
            }
            if point is not None:
                _CPU_REFERENCE.clear()  # only the current point is worth keeping
                _CPU_REFERENCE.update({(point, lv): v for lv, v in refs.items()})
            ref = refs[impl.level]
        mine = ours_scores(batch, impl.level)
        return _diffs(mine, ref, batch, impl.level, "this project on CPU (float64 both)")
    ref = ours_scores(batch, impl.level, **impl.ours_kwargs)
    opts = ", ".join(f"{k}={v!r}" for k, v in impl.ours_kwargs.items())
    return _diffs(scores, ref, batch, impl.level, f"this project ({opts})")


def _diffs(scores: np.ndarray, ref: np.ndarray, batch: Any, level: str, what: str) -> dict[str, Any]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if scores.shape != ref.shape:
        return {
            "agreement_with": what,
            "max_abs_diff": None,
            "agreement_error": f"shape {scores.shape} vs {ref.shape}",
        }
    diff = np.abs(scores - ref)
    ties = batch.tie_mask()
    res: dict[str, Any] = {
        "agreement_with": what,
        "max_abs_diff": float(diff.max()),
        "tie_sentences": int(ties.sum()),
        "mean_score": float(ref.mean()),
    }
    if level == "sentence":
        res["max_abs_diff_no_ties"] = float(diff[~ties].max()) if (~ties).any() else None
    return res


# ------------------------------------------------------------ CPU worker
def _cpu_worker(conn: Any, task: Task) -> None:
    """Runs in a process forked from the forkserver; sends dict messages to the parent."""
    try:
        import torch

        from benchmarks.data import make_batch

        impls = _impls(task)
        impl = impls[task.impl]
        # one call on a 2-sentence batch first: one-time costs (lazy imports, thread pools, caches) then
        # happen before the baseline, so that the peak measures what the call itself needs
        with contextlib.suppress(Exception):
            impl.build(make_batch(2, 16, task.num_refs, task.vocab, task.seed + 1))()
        batch = make_batch(task.batch_size, task.length, task.num_refs, task.vocab, task.seed)
        fn = impl.build(batch)
        gc.collect()
        baseline = current_rss() or 0
        exact_peak = reset_peak_rss()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        vm_size = _status_bytes("VmSize")
        if task.mem_budget_bytes is not None and vm_size is not None:
            # address-space cap: inputs and libraries already mapped + the budget + slack for thread stacks
            cap = vm_size + task.mem_budget_bytes + (1 << 30)
            if hard == resource.RLIM_INFINITY or cap < hard:
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        conn.send({"event": "ready", "baseline_rss": baseline, "pid": os.getpid()})
        budget_s = task.time_budget_s * impl.budget_scale
        try:
            status, times, out = _run_calls(fn, task, budget_s, lambda: None, lambda i: conn.send({"event": "call"}))
        except MemoryError:
            status, times, out = OVER_MEMORY, [], None
        except RuntimeError as exc:
            if "alloc" not in str(exc).lower() and "memory" not in str(exc).lower():
                raise
            status, times, out = OVER_MEMORY, [], None
        peak = peak_rss()
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        result: dict[str, Any] = {
            "event": "result",
            "status": status,
            "times_s": times,
            "peak_bytes": max(peak - baseline, 0) if status != OVER_MEMORY else None,
            "peak_exact": exact_peak,
            "baseline_rss": baseline,
            "input_tokens": batch.input_tokens,
            "torch_threads": torch.get_num_threads(),
        }
        conn.send({"event": "timed"})
        if status == OK and task.agreement:
            del fn
            gc.collect()
            result.update(_agreement(task)(task.impl, batch, impls[task.impl].to_scores(out), "cpu"))
        conn.send(result)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send({"event": "error", "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
    finally:
        conn.close()


class CpuRunner:
    """Owns the forkserver context; ``measure(task)`` runs one worker and watches it."""

    def __init__(self, preload: list[str]) -> None:
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(preload)

    def measure(self, task: Task) -> dict[str, Any]:
        budget_s = task.time_budget_s * _impls(task)[task.impl].budget_scale
        parent, child = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_cpu_worker, args=(child, task), daemon=True)
        proc.start()
        child.close()
        baseline: int | None = None
        call_started: float | None = None
        started = time.monotonic()
        result: dict[str, Any] = {"status": ERROR, "error": "worker ended without a result"}
        try:
            while True:
                if parent.poll(0.05):
                    try:
                        msg = parent.recv()
                    except EOFError:
                        break
                    event = msg.get("event")
                    if event == "ready":
                        baseline = msg["baseline_rss"]
                    elif event == "call":
                        call_started = time.monotonic()
                    elif event == "timed":
                        call_started = None
                    elif event in ("result", "error"):
                        result = msg
                        if event == "error":
                            result["status"] = ERROR
                        break
                    continue
                if not proc.is_alive():
                    # the pipe may still hold the last message
                    if parent.poll(0.2):
                        continue
                    result = {"status": ERROR, "error": f"worker died (exit code {proc.exitcode})"}
                    break
                now = time.monotonic()
                if call_started is not None and now - call_started > budget_s + GRACE_S:
                    result = {"status": OVER_TIME, "times_s": [], "lower_bound_s": budget_s}
                    break
                if baseline is None and now - started > READY_TIMEOUT_S:
                    result = {"status": ERROR, "error": "building the inputs timed out"}
                    break
                if baseline is not None and task.mem_budget_bytes is not None and call_started is not None:
                    rss = current_rss(proc.pid)
                    if rss is not None and rss - baseline > task.mem_budget_bytes:
                        result = {"status": OVER_MEMORY, "times_s": [], "lower_bound_bytes": rss - baseline}
                        break
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(10)
            parent.close()
        result.pop("event", None)
        if result.get("status") == OVER_TIME and result.get("times_s"):
            result["lower_bound_s"] = result["times_s"][0]
            result["times_s"] = []
        if result.get("status") == OVER_MEMORY:
            result["peak_bytes"] = None
        return result


# ------------------------------------------------------------ CUDA (in process)
def measure_cuda(task: Task) -> dict[str, Any]:
    import torch

    from benchmarks.data import make_batch

    impl = _impls(task)[task.impl]
    budget_s = task.time_budget_s * impl.budget_scale
    batch = make_batch(task.batch_size, task.length, task.num_refs, task.vocab, task.seed).to("cuda")
    result: dict[str, Any] = {"input_tokens": batch.input_tokens}
    try:
        fn = impl.build(batch)
        torch.cuda.synchronize()
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        status, times, out = _run_calls(fn, task, budget_s, torch.cuda.synchronize, lambda i: None)
        peak = torch.cuda.max_memory_allocated() - base
        result.update(status=status, times_s=times, peak_bytes=peak, baseline_bytes=base)
        if status == OVER_TIME:
            result["lower_bound_s"] = times[0]
            result["times_s"] = []
        elif task.mem_budget_bytes is not None and peak > task.mem_budget_bytes:
            result["status"] = OVER_MEMORY
        if result["status"] == OK and task.agreement:
            point = (task.batch_size, task.length, task.num_refs, task.vocab, task.seed)
            result.update(_agreement(task)(task.impl, batch, impl.to_scores(out), "cuda", point))
    except torch.cuda.OutOfMemoryError as exc:
        result.update(status=OVER_MEMORY, times_s=[], peak_bytes=None, error=str(exc).splitlines()[0])
    except Exception as exc:
        result.update(status=ERROR, times_s=[], error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
    finally:
        out = fn = None
        del batch
        gc.collect()
        torch.cuda.empty_cache()
    return result


def measure_inprocess_cpu(task: Task) -> dict[str, Any]:
    """CPU measurement without a worker process (``--isolation none``): no peak memory, no hard time limit."""
    from benchmarks.data import make_batch

    impl = _impls(task)[task.impl]
    batch = make_batch(task.batch_size, task.length, task.num_refs, task.vocab, task.seed)
    try:
        fn = impl.build(batch)
        status, times, out = _run_calls(fn, task, task.time_budget_s * impl.budget_scale, lambda: None, lambda i: 0)
        result: dict[str, Any] = {"status": status, "times_s": times, "peak_bytes": None}
        if status == OVER_TIME:
            result["lower_bound_s"] = times[0]
            result["times_s"] = []
        if status == OK and task.agreement:
            result.update(_agreement(task)(task.impl, batch, impl.to_scores(out), "cpu"))
    except Exception as exc:
        result = {"status": ERROR, "times_s": [], "error": f"{type(exc).__name__}: {exc}"}
    result["input_tokens"] = batch.input_tokens
    return result
