"""sentence_bleu over worker processes, and each metric's cold start, on the CPU: ``python -m benchmarks.throughput``.

Throughput: 1, 2 and 4 spawned worker processes (fresh interpreters, as verl's CPU reward workers are), each
importing the library, warming up, then, all released together, calling ``sentence_bleu`` (64 × 256, one
reference, method1) for a fixed wall time; total calls per second over the workers. The library runs with its
defaults: no thread settings anywhere, what a user's worker gets.

Cold start, each the median of fresh processes: the wall time of ``import tensorbleu_metrics.functional`` over
``import torch``, and, for each metric in processes of its own, of its first call over a warm one (same inputs; it
includes Numba's start and loading or compiling kernels, so the first process after an emptied compile cache shows
the one-time compile), and of a full garbage collection after the calls.

Output: ``benchmarks/results/cpu/throughput.json`` and ``throughput.md``. Examples::

    python -m benchmarks.throughput                           # 1, 2, 4 workers, 5 s each, 5 fresh processes
    python -m benchmarks.throughput --workers 1,4 --busy 2    # beside 2 busy processes
    python -m benchmarks.throughput --workers 1 --cold-metrics sentence_bleu,rouge_score
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import select
import shlex
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.busy import busy_count, busy_processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 300.0  # imports and warm-up of a worker on a loaded machine

# a fresh interpreter's cold start for one metric, printed as one JSON line: the import, the metric's first call,
# warm calls, then one full garbage collection (the collector's pass over every object of the process, which the
# first call's imports grow; reported beside the first call, not hidden in a later one)
_COLD = """
import gc, json, statistics, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import tensorbleu_metrics.functional as F
t2 = time.perf_counter()
from benchmarks.data import make_batch
batch = make_batch({batch}, {length}, 1, 32000, 0)
preds, target = batch.preds, batch.target_for_ours()
call = lambda: {call}
t3 = time.perf_counter()
call()
t4 = time.perf_counter()
warm = []
for _ in range(20):
    s = time.perf_counter()
    call()
    warm.append(time.perf_counter() - s)
t5 = time.perf_counter()
gc.collect()
t6 = time.perf_counter()
print(json.dumps({{"torch_import_s": t1 - t0, "import_s": t2 - t1, "first_call_s": t4 - t3,
                  "warm_call_s": statistics.median(warm), "full_gc_s": t6 - t5}}))
"""
# the call each cold-start metric times (the batch's padded rows, one reference)
COLD_CALLS = {
    "sentence_bleu": 'F.sentence_bleu(preds, target, pad_id=0, smoothing="method1")',
    "sentence_gleu": "F.sentence_gleu(preds, target, pad_id=0)",
    "rouge_score": "F.rouge_score(preds, target, pad_id=0)",
    "sentence_chrf": "F.sentence_chrf(preds, target, pad_id=0)",
    "self_bleu": "F.self_bleu(preds, pad_id=0)",
    "distinct_ngrams": "F.distinct_ngrams(preds, pad_id=0)",
}


def _sizes(text: str) -> tuple[int, int]:
    batch, length = text.lower().split("x")
    return int(batch), int(length)


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _metrics(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in COLD_CALLS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(COLD_CALLS)}, got {text!r}")
    return names


# ------------------------------------------------------------ throughput
def worker(batch_size: int, length: int, seconds: float, warmup_s: float) -> None:
    """A worker process's body: warm up, say ``ready``, wait for ``go`` on stdin, call for ``seconds``, print the
    count (one JSON line each)."""
    import torch

    from benchmarks.data import make_batch
    from tensorbleu_metrics.functional import sentence_bleu

    batch = make_batch(batch_size, length, 1, 32000, 0)
    preds, target = batch.preds, batch.target_for_ours()

    def call() -> None:
        sentence_bleu(preds, target, pad_id=0, smoothing="method1")

    call()
    until = time.perf_counter() + warmup_s
    while time.perf_counter() < until:
        call()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    start = now = time.perf_counter()
    calls = 0
    while now - start < seconds:
        call()
        calls += 1
        now = time.perf_counter()
    print(json.dumps({"calls": calls, "seconds": now - start, "torch_threads": torch.get_num_threads()}), flush=True)


def _read_json(proc: subprocess.Popen, deadline: float) -> dict[str, Any]:
    """The next JSON line a worker prints, within the deadline (its stderr's last line if it ends instead)."""
    assert proc.stdout is not None
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
        raise RuntimeError(f"worker {proc.pid} gave no answer in time")
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        err = proc.stderr.read().strip().splitlines()[-1:] if proc.stderr is not None else []
        raise RuntimeError(f"worker {proc.pid} ended (exit code {proc.returncode}): {err}")
    return json.loads(line)


def measure_workers(workers: int, size: tuple[int, int], seconds: float, warmup_s: float) -> dict[str, Any]:
    """Total calls per second of ``workers`` fresh worker processes released at the same moment."""
    code = f"from benchmarks.throughput import worker; worker({size[0]}, {size[1]}, {seconds!r}, {warmup_s!r})"
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(workers):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + START_TIMEOUT_S + warmup_s
        for proc in procs:
            _read_json(proc, deadline)
        for proc in procs:  # all at once: the timed windows overlap
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        deadline = time.monotonic() + seconds + 120
        results = [_read_json(proc, deadline) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    per_worker = [r["calls"] / r["seconds"] for r in results]
    return {
        "workers": workers,
        "calls_per_s": sum(per_worker),
        "per_worker_calls_per_s": per_worker,
        "calls": [r["calls"] for r in results],
        "seconds": [r["seconds"] for r in results],
        "torch_threads": results[0]["torch_threads"],
    }


# ------------------------------------------------------------ cold start
def measure_cold(runs: int, size: tuple[int, int], metrics: list[str]) -> dict[str, Any]:
    """Import and first-call costs of each metric over ``runs`` fresh processes (medians; every run kept)."""
    out: dict[str, Any] = {}
    for metric in metrics:
        script = _COLD.format(batch=size[0], length=size[1], call=COLD_CALLS[metric])
        samples = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"cold-start process failed: {done.stderr.strip().splitlines()[-1:]}")
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
        first_over_warm = [s["first_call_s"] - s["warm_call_s"] for s in samples]
        out[metric] = {
            "runs": samples,
            "import_over_torch_s": statistics.median(s["import_s"] for s in samples),
            "torch_import_s": statistics.median(s["torch_import_s"] for s in samples),
            "first_call_over_warm_s": statistics.median(first_over_warm),
            "first_call_over_warm_max_s": max(first_over_warm),
            "warm_call_s": statistics.median(s["warm_call_s"] for s in samples),
            "full_gc_s": statistics.median(s["full_gc_s"] for s in samples),
        }
    return out


# ------------------------------------------------------------ report
def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], cold: dict[str, Any] | None) -> str:
    b, n = meta["size"]
    lines = [
        "# sentence_bleu throughput and cold start (CPU)",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; host: {meta['host']}; {meta['cpu_count']} logical CPUs; library defaults "
        f"(torch threads in a worker: {rows[0]['torch_threads'] if rows else '?'})",
        f"- load: {meta['busy']} busy-looping process(es) beside the run" if meta["busy"] else "- load: idle",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        "",
    ]
    if rows:
        one = next((r["calls_per_s"] for r in rows if r["workers"] == 1), None)
        lines += [
            f"## Throughput: spawned workers calling `sentence_bleu` at {b} × {n} for {meta['seconds']} s together",
            "",
            "| workers | calls/s in total | per worker | × one worker |",
            "|---:|---:|---|---:|",
        ]
        for r in rows:
            each = ", ".join(f"{v:.0f}" for v in r["per_worker_calls_per_s"])
            ratio = f"{r['calls_per_s'] / one:.2f}×" if one else "—"
            lines.append(f"| {r['workers']} | {r['calls_per_s']:.0f} | {each} | {ratio} |")
        lines.append("")
    if cold:
        first = next(iter(cold.values()))
        runs = len(first["runs"])
        lines += [
            f"## Cold start: medians of {runs} fresh processes per metric ({b} × {n}, one reference)",
            "",
            f"`import torch`: {first['torch_import_s']:.3f} s; `import tensorbleu_metrics.functional` over it: "
            f"{first['import_over_torch_s']:.3f} s. Each metric in processes of its own: its first call is the "
            "process's first use of the CPU engine.",
            "",
            "| metric | first call over a warm one, s | largest of the runs, s | a warm call, ms "
            "| a full garbage collection after them, ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for metric, c in cold.items():
            lines.append(
                f"| `{metric}` | {c['first_call_over_warm_s']:.3f} | {c['first_call_over_warm_max_s']:.3f} "
                f"| {c['warm_call_s'] * 1e3:.2f} | {c['full_gc_s'] * 1e3:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    import importlib.metadata

    out = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "numba", "tensorbleu-metrics"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=_ints, default=[1, 2, 4], metavar="1,2,4", help="worker process counts")
    p.add_argument("--size", type=_sizes, default=(64, 256), metavar="BxL", help="candidates x tokens (64x256)")
    p.add_argument("--seconds", type=float, default=5.0, help="wall time of timed calls per worker count (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of untimed calls in each worker first (1)")
    p.add_argument("--cold-runs", type=int, default=5, help="fresh processes per cold-start metric (5; 0: skip)")
    p.add_argument(
        "--cold-metrics",
        type=_metrics,
        default=list(COLD_CALLS),
        metavar="sentence_bleu,...",
        help=f"the metrics whose cold start is measured ({','.join(COLD_CALLS)})",
    )
    p.add_argument(
        "--busy",
        type=busy_count,
        default=0,
        metavar="N|cores",
        help="N busy-looping processes beside the whole run (0)",
    )
    p.add_argument("--out", default=None, help="output folder (benchmarks/results/cpu)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out_dir = args.out or os.path.join(ROOT, "benchmarks", "results", "cpu")
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    cold = None
    with busy_processes(args.busy):
        for workers in args.workers:
            rows.append(measure_workers(workers, args.size, args.seconds, args.warmup))
            if not args.quiet:
                print(f"{workers} worker(s): {rows[-1]['calls_per_s']:.0f} calls/s", file=sys.stderr, flush=True)
        if args.cold_runs > 0:
            cold = measure_cold(args.cold_runs, args.size, args.cold_metrics)
            if not args.quiet:
                for metric, c in cold.items():
                    print(
                        f"cold start of {metric}: import {c['import_over_torch_s']:.3f} s over torch, first call "
                        f"{c['first_call_over_warm_s']:.3f} s over a warm one",
                        file=sys.stderr,
                        flush=True,
                    )
    meta = {
        "command": "python -m benchmarks.throughput " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "busy": args.busy,
        "size": list(args.size),
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "versions": _versions(),
        "wall_s": round(time.monotonic() - started, 1),
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "throughput.json"), "w") as fh:
        json.dump({"meta": meta, "throughput": rows, "cold_start": cold}, fh, indent=1)
    with open(os.path.join(out_dir, "throughput.md"), "w") as fh:
        fh.write(markdown(meta, rows, cold))
    if not args.quiet:
        print(f"wrote {out_dir}/throughput.json and throughput.md in {meta['wall_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
