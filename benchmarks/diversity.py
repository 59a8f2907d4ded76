"""Self-BLEU and GLEU benchmarks: ``python -m benchmarks.diversity --help`` (from the repository root).

Self-BLEU of ``B`` samples (one set, as Texygen and fast-bleu define it; and groups of 16, GRPO's shape) from 64
to 16384 samples against fast-bleu's ``SelfBLEU`` and the NLTK ``sentence_bleu(others, sample)`` loop, time and
peak memory; ``sentence_gleu`` against the NLTK ``sentence_gleu`` loop. Same workers, budgets and data as
``benchmarks.run`` (``benchmarks.measure``, ``benchmarks.data``); results in ``benchmarks/results/<device>/``
as ``diversity.json``, ``diversity.md`` and ``self_bleu_{time,memory}.png``.

Examples::

    python -m benchmarks.diversity                                   # CPU, the full grid, a few minutes
    python -m benchmarks.diversity --samples 64,256 --gleu 64x256    # a quick look
    python -m benchmarks.diversity --device both                     # + this project's rows on CUDA
    python -m benchmarks.diversity --busy 2                          # 2 busy processes beside the whole run
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmarks.busy import busy_count, busy_processes
from benchmarks.data import PAD_ID, Batch
from benchmarks.impls import SENTENCE, Impl, _floats, to_lists
from benchmarks.measure import OK, SKIPPED, CpuRunner, Task, measure_cuda, measure_inprocess_cpu
from benchmarks.run import _ints, parse_bytes, parse_grid

SELF_BLEU = "self-bleu"
GLEU = "gleu"
GROUP_SIZE = 16  # GRPO-style groups: completions of one prompt


@dataclass(frozen=True)
class DiversityImpl(Impl):
    """An implementation of one of the metrics here; ``metric`` is ``SELF_BLEU`` or ``GLEU``."""

    metric: str = SELF_BLEU
    module: str = ""  # what must import for it to be available

    def available(self) -> tuple[bool, str]:
        try:
            importlib.import_module(self.module)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        try:
            return True, importlib.metadata.version(self.package) if self.package else ""
        except importlib.metadata.PackageNotFoundError:
            return True, "?"


# ------------------------------------------------------------ this project
def _groups(batch: Batch) -> torch.Tensor:
    return torch.arange(batch.batch_size, device=batch.preds.device) // GROUP_SIZE


def _ours_self_bleu(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import self_bleu

    return lambda: self_bleu(batch.preds, smoothing="method1")


def _ours_self_bleu_groups(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import self_bleu

    groups = _groups(batch)
    return lambda: self_bleu(batch.preds, groups=groups, smoothing="method1")


def _ours_gleu(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import sentence_gleu

    preds, target = batch.preds, batch.target_for_ours()
    return lambda: sentence_gleu(preds, target, pad_id=PAD_ID)


# ------------------------------------------------------------ peers (timed from the tensors, as a loop has them)
def _fastbleu_self_bleu(batch: Batch) -> Callable[[], Any]:
    from fast_bleu import SelfBLEU

    def run() -> list[float]:
        samples = [[str(t) for t in row] for row in batch.preds.tolist()]
        return SelfBLEU(samples, {4: (0.25, 0.25, 0.25, 0.25)}, smoothing_func=1).get_score()[4]

    return run


def _nltk_self_bleu(batch: Batch) -> Callable[[], Any]:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    method1 = SmoothingFunction().method1

    def run() -> list[float]:
        samples = batch.preds.tolist()
        return [
            sentence_bleu(samples[:i] + samples[i + 1 :], hyp, smoothing_function=method1)
            for i, hyp in enumerate(samples)
        ]

    return run


def _nltk_gleu(batch: Batch) -> Callable[[], Any]:
    from nltk.translate.gleu_score import sentence_gleu

    def run() -> list[float]:
        preds, refs = to_lists(batch)
        return [sentence_gleu(r, p) for p, r in zip(preds, refs, strict=True)]

    return run


IMPLS: dict[str, DiversityImpl] = {
    impl.name: impl
    for impl in [
        DiversityImpl(
            "tensorbleu-self-bleu",
            SENTENCE,
            ("cpu", "cuda"),
            "this project: self_bleu, one set (method1)",
            "tensorbleu-metrics",
            _ours_self_bleu,
            _floats,
            is_ours=True,
            module="tensorbleu_metrics.functional",
        ),
        DiversityImpl(
            f"tensorbleu-self-bleu-groups{GROUP_SIZE}",
            SENTENCE,
            ("cpu", "cuda"),
            f"this project: self_bleu, groups of {GROUP_SIZE} (method1)",
            "tensorbleu-metrics",
            _ours_self_bleu_groups,
            _floats,
            is_ours=True,
            module="tensorbleu_metrics.functional",
        ),
        DiversityImpl(
            "fast-bleu-self-bleu",
            SENTENCE,
            ("cpu",),
            "fast-bleu SelfBLEU(...).get_score() (smoothing_func=1)",
            "fast-bleu",
            _fastbleu_self_bleu,
            _floats,
            {"smoothing": "method1"},
            vocab_sensitive=False,
            module="fast_bleu",
        ),
        DiversityImpl(
            "nltk-self-bleu",
            SENTENCE,
            ("cpu",),
            "NLTK sentence_bleu(others, sample) loop (method1)",
            "nltk",
            _nltk_self_bleu,
            _floats,
            {"smoothing": "method1"},
            vocab_sensitive=False,
            budget_scale=2.0,
            is_baseline=True,
            module="nltk.translate.bleu_score",
        ),
        DiversityImpl(
            "tensorbleu-sentence-gleu",
            SENTENCE,
            ("cpu", "cuda"),
            "this project: sentence_gleu",
            "tensorbleu-metrics",
            _ours_gleu,
            _floats,
            is_ours=True,
            metric=GLEU,
            module="tensorbleu_metrics.functional",
        ),
        DiversityImpl(
            "nltk-sentence-gleu",
            SENTENCE,
            ("cpu",),
            "NLTK sentence_gleu loop",
            "nltk",
            _nltk_gleu,
            _floats,
            vocab_sensitive=False,
            budget_scale=2.0,
            is_baseline=True,
            metric=GLEU,
            module="nltk.translate.gleu_score",
        ),
    ]
}

PRELOAD_MODULES = ["torch", "numpy", "benchmarks.data", "benchmarks.impls", "benchmarks.measure", __name__]
OPTIONAL_PRELOAD = [
    "tensorbleu_metrics.functional",
    "nltk.translate.bleu_score",
    "nltk.translate.gleu_score",
    "fast_bleu",
]


def agreement(impl_name: str, batch: Batch, scores: np.ndarray, device: str, point: tuple | None = None) -> dict:
    """Largest |row - this project in float64 on CPU| (for our CPU rows: nothing to compare)."""
    from tensorbleu_metrics.functional import self_bleu, sentence_gleu

    impl = IMPLS[impl_name]
    if impl.is_ours and device == "cpu":
        return {"agreement_with": "reference", "max_abs_diff": None}
    cpu = batch.to("cpu")
    if impl.metric == GLEU:
        ref = sentence_gleu(cpu.preds, cpu.target_for_ours(), pad_id=PAD_ID, dtype=torch.float64)
    else:
        groups = _groups(cpu) if "groups" in impl_name else None
        ref = self_bleu(cpu.preds, groups=groups, smoothing="method1", dtype=torch.float64)
    diff = np.abs(np.asarray(scores, dtype=np.float64).reshape(-1) - _floats(ref))
    what = "this project on CPU (float64)" if impl.is_ours else "this project (method1)"
    return {"agreement_with": what, "max_abs_diff": float(diff.max()), "mean_score": float(_floats(ref).mean())}


# ------------------------------------------------------------ running
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.diversity", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda", "both"], default="cpu")
    p.add_argument("--samples", type=_ints, default=[64, 256, 1024, 4096, 16384], help="Self-BLEU set sizes")
    p.add_argument("--length", type=int, default=32, help="Self-BLEU sample length")
    p.add_argument("--vocab", type=int, default=1000, help="Self-BLEU vocabulary")
    p.add_argument("--gleu", type=parse_grid, default=([512], [1024]), metavar="'B1,B2xL1,L2'", help="GLEU grid")
    p.add_argument("--gleu-vocab", type=int, default=32000)
    p.add_argument("--impls", default="all", help=f"comma list among {', '.join(IMPLS)}")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--point-time", type=float, default=3.0, help="seconds of timed calls per point (min 3 calls)")
    p.add_argument("--time-budget", type=float, default=10.0, help="seconds per call (NLTK gets 2x)")
    p.add_argument("--mem-budget", type=parse_bytes, default=parse_bytes("4GiB"))
    p.add_argument("--isolation", choices=["process", "none"], default="process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device-tag>/)")
    p.add_argument(
        "--busy",
        type=busy_count,
        default=0,
        metavar="N|cores",
        help="N busy-looping processes beside the whole run, this project and the peers alike (0)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return p


def _points(args: argparse.Namespace, impl: DiversityImpl) -> list[tuple[int, int, int]]:
    if impl.metric == GLEU:
        return [(b, n, args.gleu_vocab) for b in args.gleu[0] for n in args.gleu[1]]
    return [(b, args.length, args.vocab) for b in args.samples]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "both" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    names = list(IMPLS) if args.impls == "all" else [n.strip() for n in args.impls.split(",") if n.strip()]
    unknown = [n for n in names if n not in IMPLS]
    if unknown:
        print(f"unknown implementations: {unknown}", file=sys.stderr)
        return 2
    versions, missing = {}, {}
    for name in names:
        ok, info = IMPLS[name].available()
        (versions if ok else missing)[name] = info
    runner = None
    if args.isolation == "process" and "cpu" in devices:
        preload = list(PRELOAD_MODULES)
        for module in OPTIONAL_PRELOAD:
            try:
                importlib.import_module(module)
                preload.append(module)
            except Exception:
                pass
        runner = CpuRunner([*preload, "benchmarks._gc_freeze"])
    with busy_processes(args.busy):
        rows = _run(args, names, missing, devices, runner)
    out = args.out or os.path.join("benchmarks", "results", "cpu" if devices == ["cpu"] else "-and-".join(devices))
    os.makedirs(out, exist_ok=True)
    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "busy": args.busy,
        "cuda_device": torch.cuda.get_device_name() if "cuda" in devices else None,
        "versions": versions,
        "not_available": missing,
    }
    with open(os.path.join(out, "diversity.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    with open(os.path.join(out, "diversity.md"), "w") as fh:
        fh.write(markdown(meta, rows))
    if not args.no_plots:
        plot(out, rows)
    if not args.quiet:
        print(f"results in {out}/diversity.md")
    return 0


def _run(
    args: argparse.Namespace, names: list[str], missing: dict[str, str], devices: list[str], runner: CpuRunner | None
) -> list[dict[str, Any]]:
    """Every (implementation, device, point) of the run, one row each; larger points skipped past a budget."""
    rows: list[dict[str, Any]] = []
    for name in names:
        if name in missing:
            continue
        impl = IMPLS[name]
        for device in (d for d in devices if d in impl.devices):
            over = False
            for batch_size, length, vocab in _points(args, impl):
                row = {"impl": name, "metric": impl.metric, "device": device, "batch_size": batch_size}
                row.update(length=length, vocab=vocab, label=impl.label)
                if over:
                    rows.append({**row, "status": SKIPPED})
                    continue
                task = Task(
                    name, device, batch_size, length, 1, vocab, args.seed, args.warmup, args.repeats,
                    args.time_budget, args.mem_budget, args.point_time, registry=__name__,
                )  # fmt: skip
                if device == "cuda":
                    res = measure_cuda(task)
                elif runner is not None:
                    res = runner.measure(task)
                else:
                    res = measure_inprocess_cpu(task)
                times = res.get("times_s") or []
                row.update(
                    status=res.get("status"),
                    median_ms=1e3 * statistics.median(times) if times else None,
                    min_ms=1e3 * min(times) if times else None,
                    repeats=len(times),
                    peak_bytes=res.get("peak_bytes"),
                    lower_bound_ms=1e3 * res["lower_bound_s"] if res.get("lower_bound_s") else None,
                    max_abs_diff=res.get("max_abs_diff"),
                    agreement_with=res.get("agreement_with"),
                    error=res.get("error"),
                )
                rows.append(row)
                over = row["status"] != OK
                if not args.quiet:
                    shown = f"{row['median_ms']:.1f} ms" if row["median_ms"] is not None else row["status"]
                    print(f"{name:32s} {device:4s} {batch_size:6d} x {length:5d}: {shown}", flush=True)
    return rows


# ------------------------------------------------------------ report
def _median(rows: list[dict], impl: str, device: str, batch_size: int, length: int) -> float | None:
    for r in rows:
        key = (r["impl"], r["device"], r["batch_size"], r["length"])
        if key == (impl, device, batch_size, length) and r.get("median_ms") is not None:
            return r["median_ms"]
    return None


def _cell(r: dict) -> str:
    if r.get("median_ms") is not None:
        return f"{r['median_ms']:.1f} ms"
    if r.get("lower_bound_ms"):
        return f"> {r['lower_bound_ms'] / 1e3:.0f} s"
    return "—" if r.get("status") == SKIPPED else str(r.get("status"))


def markdown(meta: dict, rows: list[dict]) -> str:
    """Tables: time per implementation and size, ratios to this project (same run), memory, agreement."""
    lines = [
        "# Self-BLEU and GLEU benchmarks",
        "",
        f"{meta['date']}, torch {meta['torch']} ({meta['torch_threads']} threads, {meta['cpu_count']} CPUs)"
        + (f", {meta['cuda_device']}" if meta.get("cuda_device") else "")
        + f"; `python -m benchmarks.diversity {' '.join(meta['argv'])}`. Medians; peers timed from the tensors; "
        + (f"{meta['busy']} busy-looping process(es) beside the run." if meta.get("busy") else "idle machine."),
        "",
    ]
    for metric, title in ((SELF_BLEU, "Self-BLEU-4"), (GLEU, "Sentence GLEU")):
        mrows = [r for r in rows if r["metric"] == metric]
        if not mrows:
            continue
        sizes = sorted({(r["batch_size"], r["length"]) for r in mrows})
        lines += [f"## {title}", "", "| implementation | device | " + " | ".join(f"{b} × {n}" for b, n in sizes) + " |"]
        lines.append("|---|---|" + "---:|" * len(sizes))
        impls = list(dict.fromkeys((r["impl"], r["device"]) for r in mrows))
        for impl, device in impls:
            cells = []
            for b, n in sizes:
                r = next(
                    (
                        x
                        for x in mrows
                        if (x["impl"], x["device"], x["batch_size"], x["length"]) == (impl, device, b, n)
                    ),
                    None,
                )
                cells.append(_cell(r) if r else "")
            lines.append(f"| {IMPLS[impl].label} | {device} | " + " | ".join(cells) + " |")
        ours = "tensorbleu-self-bleu" if metric == SELF_BLEU else "tensorbleu-sentence-gleu"
        for impl, device in impls:
            if IMPLS[impl].is_ours:
                continue
            cells = []
            for b, n in sizes:
                theirs, mine = _median(mrows, impl, device, b, n), _median(mrows, ours, "cpu", b, n)
                cells.append(f"{theirs / mine:.0f}×" if theirs and mine else "")
            lines.append(f"| {impl} ÷ this project (CPU) | | " + " | ".join(cells) + " |")
        mem = [r for r in mrows if IMPLS[r["impl"]].is_ours and r.get("peak_bytes")]
        if mem:
            lines += ["", "Peak memory added by a call of this project's function (peak RSS above the inputs on CPU, "
                      "`max_memory_allocated` on CUDA), and per input token:", ""]  # fmt: skip
            for r in mem:
                tokens = r["batch_size"] * r["length"] * (2 if metric == GLEU else 1)
                lines.append(
                    f"- {r['impl']} ({r['device']}) {r['batch_size']} × {r['length']}: "
                    f"{r['peak_bytes'] / 2**20:.1f} MiB, {r['peak_bytes'] / tokens:.0f} B/token"
                )
        diffs = [r for r in mrows if r.get("max_abs_diff") is not None]
        if diffs:
            worst = max(diffs, key=lambda r: r["max_abs_diff"])
            lines += ["", f"Largest |difference| from this project's float64 scores: {worst['max_abs_diff']:.1e} "
                      f"({worst['impl']}, {worst['batch_size']} × {worst['length']})."]  # fmt: skip
        lines.append("")
    if meta.get("not_available"):
        lines += ["Not available: " + "; ".join(f"{k} ({v})" for k, v in meta["not_available"].items()), ""]
    return "\n".join(lines)


def plot(out: str, rows: list[dict]) -> None:
    """Self-BLEU time and peak memory against the number of samples, log-log, every implementation."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    srows = [r for r in rows if r["metric"] == SELF_BLEU]
    for what, key, unit, scale in (("time", "median_ms", "ms", 1.0), ("memory", "peak_bytes", "MiB", 2.0**-20)):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for impl, device in dict.fromkeys((r["impl"], r["device"]) for r in srows):
            pts = [
                (r["batch_size"], r[key] * scale)
                for r in srows
                if (r["impl"], r["device"]) == (impl, device) and r.get(key)
            ]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", label=f"{impl} ({device})")
        if not ax.lines:
            plt.close(fig)
            continue
        # a line through this project's largest point, slope 1: what linear in the number of samples looks like
        # (small points sit on the measurement's floor: fixed costs, page-sized memory steps)
        first = ax.lines[0]
        x0, y0 = first.get_xdata()[-1], first.get_ydata()[-1]
        xs = sorted({r["batch_size"] for r in srows})
        ax.plot(xs, [y0 * x / x0 for x in xs], ls=":", color="grey", label="linear")
        ax.set(xscale="log", yscale="log", xlabel="samples (32 tokens each)", ylabel=f"{what} ({unit})")
        ax.set_title(f"Self-BLEU-4: {what} vs number of samples")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"self_bleu_{what}.png"), dpi=120)
        plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
