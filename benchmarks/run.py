"""Benchmark runner: ``python -m benchmarks.run --help`` (from the repository root).

Examples::

    python -m benchmarks.run --device cpu --grid small                  # a few minutes
    python -m benchmarks.run --device cpu --grid paper                  # full CPU grid (< 25 min)
    python -m benchmarks.run --device both --grid paper --out /tmp/res  # CPU peers + CUDA (see gpu.sh)
    python -m benchmarks.run --grid "16,64x128" --refs 1 --vocab 32000 \
        --impls tensorbleu-sentence,nltk-sentence
    python -m benchmarks.run --grid small --busy 2                      # 2 busy processes beside every point
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import os
import platform
import re
import shlex
import statistics
import sys
import time
from typing import Any

from benchmarks import report
from benchmarks.busy import busy_count, busy_processes
from benchmarks.impls import FREEZE_MODULE, IMPLS, OPTIONAL_PRELOAD, PRELOAD_MODULES
from benchmarks.measure import OK, SKIPPED, WARMUP_S, CpuRunner, Task, measure_cuda, measure_inprocess_cpu

GRIDS = {
    "paper": ([16, 32, 64, 128, 256, 512], [256, 1024]),
    "small": ([8, 32], [64, 256]),
    "tiny": ([4], [16]),
}
VERSIONED = [
    "torch",
    "numpy",
    "nltk",
    "sacrebleu",
    "torchmetrics",
    "bleuscore",
    "fast-bleu",
    "rxlm",
    "tensorbleu-metrics",
]


def parse_grid(text: str) -> tuple[list[int], list[int]]:
    """``paper`` | ``small`` | ``tiny`` | ``"B1,B2xL1,L2"`` -> (batch sizes, lengths)."""
    if text in GRIDS:
        return GRIDS[text]
    m = re.fullmatch(r"\s*([\d,\s]+?)\s*[xX×]\s*([\d,\s]+?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"grid must be one of {sorted(GRIDS)} or 'B1,B2xL1,L2', got {text!r}")
    return _ints(m.group(1)), _ints(m.group(2))


def _ints(text: str) -> list[int]:
    try:
        vals = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def parse_bytes(text: str) -> int | None:
    """``4GiB``, ``512MiB``, ``2e9``, ``none`` -> bytes (None = no budget)."""
    t = text.strip().lower()
    if t in ("none", "0", "inf", ""):
        return None
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    m = re.fullmatch(r"([\d.e+]+)\s*([kmgt]?)(i?b)?", t)
    if not m:
        raise argparse.ArgumentTypeError(f"memory size like 4GiB expected, got {text!r}")
    return int(float(m.group(1)) * units.get(m.group(2), 1))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda", "both"], default="cpu")
    p.add_argument("--grid", type=parse_grid, default=GRIDS["small"], metavar="paper|small|tiny|'B1,B2xL1,L2'")
    p.add_argument("--refs", type=_ints, default=[1, 4], metavar="1,4", help="references per candidate")
    p.add_argument("--vocab", type=_ints, default=[32000, 128000], metavar="32000,128000")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per point (fewer for slow calls)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (skipped for calls over 1 s)")
    p.add_argument(
        "--warmup-time",
        type=float,
        default=WARMUP_S,
        help=f"and untimed calls until they have run this long, a fresh worker's first calls being slow ({WARMUP_S})",
    )
    p.add_argument("--point-time", type=float, default=5.0, help="seconds of timed calls per point (min 3 calls)")
    p.add_argument(
        "--impls",
        default="all",
        help="comma list of implementation names, each optionally with @cpu or @cuda; 'all' = every "
        "available one"
        f" ({', '.join(IMPLS)})",
    )
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device-tag>/)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=5.0,
        help="seconds per call; a slower first call ends the point as 'over time budget' and skips the "
        "larger "
        "points of that implementation (NLTK, the baseline, gets 4x)",
    )
    p.add_argument("--mem-budget", type=parse_bytes, default=parse_bytes("4GiB"), help="CPU, per point ('none')")
    p.add_argument("--cuda-mem-budget", type=parse_bytes, default=None, help="CUDA, per point (default none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--all-vocabs",
        action="store_true",
        help="also run the list/string peers (whose cost does not depend on the vocabulary) at every vocab; "
        "by "
        "default they run at the first one only and speed-ups at the other vocabs use it",
    )
    p.add_argument(
        "--isolation",
        choices=["process", "none"],
        default="process",
        help="CPU: one worker process per point (peak RSS, hard time limit) or in-process (no memory figures)",
    )
    p.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="set a private constant of tensorbleu_metrics.functional._sorted_pass in the measuring process (CUDA "
        "points, --isolation none): A/B of the kernel's choices, e.g. _ONE_SORT_ROW=0 (benchmarks.gpu_probe "
        "prints the one it measured best)",
    )
    p.add_argument(
        "--busy",
        type=busy_count,
        default=0,
        metavar="N|cores",
        help="N busy-looping processes beside the whole measurement, this project and the peers alike (0)",
    )
    p.add_argument("--no-agreement", action="store_true", help="skip the agreement check")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def select_impls(spec: str, devices: list[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """-> ([(impl, device)], {impl: reason not available})."""
    wanted: list[tuple[str, str | None]] = []
    if spec.strip() == "all":
        wanted = [(name, None) for name in IMPLS]
    else:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, dev = item.partition("@")
            if name not in IMPLS:
                raise SystemExit(f"unknown implementation {name!r}; known: {', '.join(IMPLS)}")
            if dev and dev not in ("cpu", "cuda"):
                raise SystemExit(f"unknown device in {item!r}")
            wanted.append((name, dev or None))
    pairs: list[tuple[str, str]] = []
    unavailable: dict[str, str] = {}
    for name, dev in wanted:
        ok, info = IMPLS[name].available()
        if not ok:
            unavailable[name] = info
            continue
        for d in devices:
            if d in IMPLS[name].devices and (dev is None or dev == d) and (name, d) not in pairs:
                pairs.append((name, d))
    return pairs, unavailable


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class _Progress:
    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.done, self.quiet, self.bar = total, 0, quiet, None
        if not quiet and sys.stderr.isatty():  # a log file gets one printed line per point instead
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="pt", dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                self.bar = None

    def step(self, label: str, result: str) -> None:
        self.done += 1
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{label}: {result}", refresh=False)
            self.bar.update(1)
        else:
            print(f"[{self.done}/{self.total}] {label}: {result}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def set_kernel_constants(values: dict[str, int]) -> None:
    """Set private constants of the counting kernel by name (each must exist)."""
    from tensorbleu_metrics.functional import _sorted_pass

    for name, value in values.items():
        if not hasattr(_sorted_pass, name):
            raise SystemExit(f"--kernel {name}={value}: the counting kernel has no constant {name!r}")
        setattr(_sorted_pass, name, value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    set_kernel_constants({name: int(value) for name, _, value in (s.partition("=") for s in args.kernel)})
    # CUDA first: a run stopped early (a lent machine's time limit) keeps the points only that machine can measure
    devices = ["cuda", "cpu"] if args.device == "both" else [args.device]
    gpu = None
    if "cuda" in devices:
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda/both: no CUDA device visible to torch")
        gpu = torch.cuda.get_device_name(0)
    tag = {"cpu": "cpu", "cuda": f"cuda-{_slug(gpu or '')}", "both": f"{_slug(gpu or '')}-and-cpu"}[args.device]
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", tag)
    os.makedirs(out_dir, exist_ok=True)

    pairs, unavailable = select_impls(args.impls, devices)
    if not pairs:
        raise SystemExit(f"nothing to run (unavailable: {unavailable})")
    batch_sizes, lengths = args.grid

    # the task list, in the order that lets an over-budget point skip the larger ones
    tasks: list[Task] = []
    order = {pair: i for i, pair in enumerate(pairs)}
    for device in devices:
        for vi, vocab in enumerate(args.vocab):
            for refs in args.refs:
                for length in lengths:
                    for bs in batch_sizes:
                        for name, dev in pairs:
                            if dev != device:
                                continue
                            if vi > 0 and not IMPLS[name].vocab_sensitive and not args.all_vocabs:
                                continue
                            tasks.append(
                                Task(
                                    name,
                                    device,
                                    bs,
                                    length,
                                    refs,
                                    vocab,
                                    args.seed,
                                    args.warmup,
                                    args.repeats,
                                    args.time_budget,
                                    args.mem_budget if device == "cpu" else args.cuda_mem_budget,
                                    args.point_time,
                                    agreement=not args.no_agreement,
                                    warmup_s=args.warmup_time,
                                )
                            )

    runner = None
    if "cpu" in devices and args.isolation == "process":
        preload = list(PRELOAD_MODULES)
        for mod in OPTIONAL_PRELOAD:
            try:
                __import__(mod)
                preload.append(mod)
            except Exception:
                pass
        runner = CpuRunner([*preload, FREEZE_MODULE])

    if gpu is not None and args.cuda_mem_budget is not None:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(0.95, (args.cuda_mem_budget + (1 << 30)) / total))

    rows: list[dict[str, Any]] = []
    t_start = time.monotonic()
    with busy_processes(args.busy):
        _run_tasks(tasks, runner, order, rows, out_dir, argv, args, gpu, unavailable, t_start)

    meta = _meta(argv, args, gpu, unavailable, t_start, partial=False)
    plots = _save(out_dir, meta, rows, plots=not args.no_plots)
    if not args.quiet:
        print(f"wrote {out_dir}/results.json, results.md" + (f" and {len(plots)} figures" if plots else ""))
        print(f"total {meta['wall_s']} s; not available: {unavailable or 'none'}")
        _print_agreement(rows)
    return 0


def _run_tasks(
    tasks: list[Task],
    runner: CpuRunner | None,
    order: dict[tuple[str, str], int],
    rows: list[dict[str, Any]],
    out_dir: str,
    argv: list[str] | None,
    args: argparse.Namespace,
    gpu: str | None,
    unavailable: dict[str, str],
    t_start: float,
) -> None:
    """Measure the tasks in order, appending a row each to ``rows`` (saved every 20 s as partial results)."""
    over: dict[tuple, list[tuple[int, int]]] = {}  # (impl, device, vocab, refs) -> [(L, B) over budget]
    progress = _Progress(len(tasks), args.quiet)
    last_save = time.monotonic()
    for task in tasks:
        key = (task.impl, task.device, task.vocab, task.num_refs)
        label = f"{task.impl}@{task.device} {task.batch_size}x{task.length} r{task.num_refs} v{task.vocab}"
        t_task = time.monotonic()
        if any(task.length >= lo and task.batch_size >= bo for lo, bo in over.get(key, [])):
            res: dict[str, Any] = {"status": SKIPPED}
        elif task.device == "cuda":
            res = measure_cuda(task)
        elif runner is not None:
            res = runner.measure(task)
        else:
            res = measure_inprocess_cpu(task)
        if res["status"] not in (OK, SKIPPED):
            over.setdefault(key, []).append((task.length, task.batch_size))
        row = _row(task, res, order[(task.impl, task.device)])
        row["wall_s"] = round(time.monotonic() - t_task, 3)
        rows.append(row)
        progress.step(label, f"{row['median_ms']:.3g} ms" if row["median_ms"] else res["status"])
        if time.monotonic() - last_save > 20:  # partial results survive an interrupted run
            _save(out_dir, _meta(argv, args, gpu, unavailable, t_start, partial=True), rows, plots=False)
            last_save = time.monotonic()
    progress.close()


def _save(out_dir: str, meta: dict[str, Any], rows: list[dict[str, Any]], plots: bool) -> list[str]:
    report.add_speedups(rows)
    report.write_json(os.path.join(out_dir, "results.json"), meta, rows)
    report.write_markdown(os.path.join(out_dir, "results.md"), meta, rows)
    _add_busy_line(os.path.join(out_dir, "results.md"), meta["busy"])
    return report.write_plots(out_dir, rows) if plots else []


def _add_busy_line(path: str, busy: int) -> None:
    """The load beside the measurement, as a line of the markdown header after the CPU's."""
    with open(path) as fh:
        lines = fh.read().split("\n")
    text = f"- load: {busy} busy-looping process(es) beside the measurement" if busy else "- load: idle machine"
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("- CPU:")), 2)
    lines.insert(at, text)
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def _meta(
    argv: list[str] | None,
    args: argparse.Namespace,
    gpu: str | None,
    unavailable: dict[str, str],
    t_start: float,
    partial: bool,
) -> dict[str, Any]:
    import torch

    batch_sizes, lengths = args.grid
    return {
        "command": "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "versions": _versions(),
        "unavailable": unavailable,
        "mem_budget_bytes": args.mem_budget,
        "cuda_mem_budget_bytes": args.cuda_mem_budget,
        "isolation": args.isolation,
        "busy": args.busy,
        "wall_s": round(time.monotonic() - t_start, 1),
        "partial": partial,
        "args": {k: v for k, v in vars(args).items() if k != "grid"} | {"grid": {"B": batch_sizes, "L": lengths}},
    }


def _row(task: Task, res: dict[str, Any], order: int) -> dict[str, Any]:
    times_ms = [t * 1000 for t in res.get("times_s", [])]
    tokens = res.get("input_tokens")
    peak = res.get("peak_bytes")
    row: dict[str, Any] = {
        "impl": task.impl,
        "level": IMPLS[task.impl].level,
        "label": IMPLS[task.impl].label,
        "device": task.device,
        "batch_size": task.batch_size,
        "length": task.length,
        "num_refs": task.num_refs,
        "vocab": task.vocab,
        "status": res["status"],
        "median_ms": statistics.median(times_ms) if times_ms and res["status"] == OK else None,
        "min_ms": min(times_ms) if times_ms and res["status"] == OK else None,
        "times_ms": times_ms,
        "n_repeats": len(times_ms),
        "lower_bound_ms": res["lower_bound_s"] * 1000 if res.get("lower_bound_s") else None,
        "peak_bytes": peak,
        "input_tokens": tokens,
        "bytes_per_token": peak / tokens if peak is not None and tokens else None,
        "order": order,
    }
    for k in (
        "max_abs_diff",
        "max_abs_diff_no_ties",
        "tie_sentences",
        "agreement_with",
        "mean_score",
        "agreement_error",
        "error",
        "trace",
        "torch_threads",
        "peak_exact",
        "lower_bound_bytes",
    ):
        if k in res:
            row[k] = res[k]
    return row


def _print_agreement(rows: list[dict[str, Any]]) -> None:
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        d = r.get("max_abs_diff")
        if d is None:
            continue
        k = (r["impl"], r["device"])
        if k not in worst or d > worst[k]["max_abs_diff"]:
            worst[k] = r
    if not worst:
        return
    print("agreement (largest |difference| to this project's scores over the grid):")
    for (impl, device), r in worst.items():
        extra = ""
        if r.get("max_abs_diff_no_ties") is not None and r.get("tie_sentences"):
            extra = f" ({r['max_abs_diff_no_ties']:.2e} without closest-length ties)"
        print(f"  {impl:24s} {device:4s} {r['max_abs_diff']:.2e}{extra}  vs {r['agreement_with']}")


if __name__ == "__main__":
    sys.exit(main())
