"""CPU engine benchmark: this project against its fastest peers, idle and beside busy processes, in one run.

Every case (a metric at one size) is measured twice, on an idle machine and with ``--busy N`` busy-looping
processes beside it (``os.cpu_count()`` by default), this project and the peers under the same load. Within a
case and load the implementations take turns, as in :mod:`benchmarks.ratio`: each round runs every implementation
(the order rotating from round to round), and a ratio is the median over the rounds of (peer time / this
project's time in the same round), robust to a machine whose speed drifts. A slow implementation gets a time
budget (``--time`` seconds of timed calls per case and load, at least one round): it joins fewer rounds, spread
over the run, still paired with this project's time of the same round (this project joins every round, as many as
its own budget allows). This project runs with the library's defaults (no thread settings), as a user gets it.

In a round, an implementation runs its calls back to back for about ``BURST_S`` (one call where that is slower):
the round's time for it is the mean of the calls after its first, as a user's loop of calls or a loop of the
same metric over a batch meets them; the first call, right after the other implementations' calls, is reported
too (in brackets in ``engine.md``): a call that follows other work finds its code and data out of the caches,
which costs a small call more than its counting.

Cases: per-sentence BLEU (method1) against the NLTK ``sentence_bleu`` loop and bleuscore, uniform and Zipf tokens;
ROUGE-1/2/L against rouge-score, rouge-score-rs, rouge-rust and rapidrouge, ROUGE-Lsum against rouge-score-rs;
Self-BLEU against fast-bleu; GLEU against the NLTK ``sentence_gleu`` loop; one 256-token sample at a time. Peers
start from the token-ID tensors (``.tolist()`` and joined strings are timed). Agreement: each peer's scores of
its last idle call against this project's float64 scores. A peer that does not import is reported as not
available. Output: ``benchmarks/results/cpu/engine.json`` and ``engine.md``. Examples::

    python -m benchmarks.engine                          # everything, idle and beside os.cpu_count() busy processes
    python -m benchmarks.engine --only bleu,single --busy 4
    python -m benchmarks.engine --tiny --busy 1 --out /tmp/engine   # tiny sizes: checks that it runs
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmarks import diversity, rouge
from benchmarks.busy import busy_count, busy_processes
from benchmarks.data import PAD_ID, Batch, make_batch
from benchmarks.impls import IMPLS as BLEU_IMPLS
from benchmarks.impls import _floats
from benchmarks.measure import agreement as bleu_agreement

OURS = "ours"
GROUPS = ("bleu", "rouge", "self-bleu", "gleu", "single")
TITLES = {
    "bleu": "Per-sentence BLEU (smoothing method1)",
    "rouge": "ROUGE (one reference)",
    "self-bleu": "Self-BLEU-4 (method1, one set)",
    "gleu": "Sentence GLEU",
    "single": "One sample at a time (sentence_bleu, a single 256-token row, input checks included)",
}
SLOW_CALL_S = 1.0  # an estimated call slower than this gets no full-size warm-up call
BURST_S = 0.005  # in a round, an implementation's calls run back to back for about this long (at least one)
MAX_BURST = 200
LSUM_SENTENCE = 32  # ROUGE-Lsum: a separator every this many tokens
VERSIONED = (
    "torch",
    "numpy",
    "numba",
    "nltk",
    "bleuscore",
    "rouge-score",
    "rouge-score-rs",
    "rouge-rust",
    "rapidrouge",
    "fast-bleu",
    "tensorbleu-metrics",
)


@dataclass
class Impl:
    label: str
    build: Callable[[Batch], Callable[[], Any]]
    module: str  # what must import for it to run
    agree: Callable[[Batch, Any], dict[str, Any]] | None = None  # peer output -> max_abs_diff and what it is against


@dataclass
class Case:
    group: str
    batch_size: int
    length: int
    refs: int
    vocab: int
    dist: str
    impls: dict[str, Impl]  # this project's first, under OURS
    rounds: int
    note: str = ""
    seed: int = 0
    unit: str = "ms"
    index: int = 0  # its place in the run
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        refs = f", {self.refs} refs" if self.refs > 1 else ""
        dist = ", Zipf" if self.dist == "zipf" else ""
        vocab = f", vocab {self.vocab}" if self.vocab != 32000 else ""
        return f"{self.batch_size} × {self.length}{refs}{dist}{vocab}{self.note}"


# ------------------------------------------------------------ implementations
def _ours_bleu(batch: Batch) -> Callable[[], Any]:
    from tensorbleu_metrics.functional import sentence_bleu

    preds, target = batch.preds, batch.target_for_ours()
    return lambda: sentence_bleu(preds, target, pad_id=PAD_ID, smoothing="method1")


def _bleu_agree(name: str) -> Callable[[Batch, Any], dict[str, Any]]:
    def agree(batch: Batch, out: Any) -> dict[str, Any]:
        res = bleu_agreement(name, batch, BLEU_IMPLS[name].to_scores(out), "cpu")
        return {"max_abs_diff": res.get("max_abs_diff"), "agreement_with": res.get("agreement_with")}

    return agree


def _rouge_agree(sentence_length: int = rouge.SENTENCE_LENGTH) -> Callable[[Batch, Any], dict[str, Any]]:
    def agree(batch: Batch, out: Any) -> dict[str, Any]:
        return {"max_abs_diff": rouge.agreement(batch, out, sentence_length), "agreement_with": "this project (F)"}

    return agree


def _diversity_agree(name: str, against: str) -> Callable[[Batch, Any], dict[str, Any]]:
    def agree(batch: Batch, out: Any) -> dict[str, Any]:
        res = diversity.agreement(name, batch, _floats(out), "cpu")
        return {"max_abs_diff": res.get("max_abs_diff"), "agreement_with": against}

    return agree


def _bleu_impls() -> dict[str, Impl]:
    return {
        OURS: Impl("this project: sentence_bleu(smoothing='method1')", _ours_bleu, "tensorbleu_metrics.functional"),
        "nltk": Impl(
            "NLTK sentence_bleu loop (method1)",
            BLEU_IMPLS["nltk-sentence"].build,
            "nltk.translate.bleu_score",
            _bleu_agree("nltk-sentence"),
        ),
        "bleuscore": Impl(
            "bleuscore compute loop (Rust; no smoothing)",
            BLEU_IMPLS["bleuscore-sentence"].build,
            "bleuscore",
            _bleu_agree("bleuscore-sentence"),
        ),
    }


def _rouge_impls() -> dict[str, Impl]:
    agree = _rouge_agree()
    peers = {
        "rouge-score": ("rouge-score RougeScorer.score_multi loop", "rouge_score"),
        "rouge-score-rs": ("rouge-score-rs RougeScorer.score_batch (Rust, all cores)", "rouge_score_rs"),
        "rouge-rust": ("rouge-rust fast_rouge.score_batch (Rust)", "fast_rouge"),
        "rapidrouge": ("rapidrouge RougeScorer.score_multi loop (pure Python)", "rapidrouge"),
    }
    impls = {
        OURS: Impl("this project: rouge_score(rouge1, rouge2, rougeL)", rouge.IMPLS["ours-rouge"][0], "torch"),
    }
    for name, (label, module) in peers.items():
        impls[name] = Impl(label, rouge.IMPLS[name][0], module, agree)
    return impls


def _lsum_impls(sentence_length: int) -> dict[str, Impl]:
    return {
        OURS: Impl(
            f"this project: rouge_score(rougeLsum), a separator every {sentence_length} tokens",
            rouge.ours_lsum(sentence_length),
            "torch",
        ),
        "rouge-score-rs": Impl(
            "rouge-score-rs rougeLsum score_batch (Rust, all cores)",
            rouge.rouge_score_rs_lsum(sentence_length),
            "rouge_score_rs",
            _rouge_agree(sentence_length),
        ),
    }


def _self_bleu_impls() -> dict[str, Impl]:
    return {
        OURS: Impl("this project: self_bleu(smoothing='method1')", diversity._ours_self_bleu, "torch"),
        "fast-bleu": Impl(
            "fast-bleu SelfBLEU(...).get_score() (C++)",
            diversity.IMPLS["fast-bleu-self-bleu"].build,
            "fast_bleu",
            _diversity_agree("fast-bleu-self-bleu", "this project (method1)"),
        ),
    }


def _gleu_impls() -> dict[str, Impl]:
    return {
        OURS: Impl("this project: sentence_gleu", diversity._ours_gleu, "torch"),
        "nltk": Impl(
            "NLTK sentence_gleu loop",
            diversity.IMPLS["nltk-sentence-gleu"].build,
            "nltk.translate.gleu_score",
            _diversity_agree("nltk-sentence-gleu", "this project"),
        ),
    }


def build_cases(args: argparse.Namespace) -> list[Case]:
    """The cases of the run, in order (``--tiny``: the same cases at a few tokens each)."""

    def size(batch_size: int, length: int) -> tuple[int, int]:
        return (min(batch_size, 4), min(length, 24)) if args.tiny else (batch_size, length)

    rounds, cases = args.rounds, []
    if "bleu" in args.only:
        for (b, n), refs, dist in (
            ((64, 128), 1, "uniform"),
            ((64, 256), 1, "uniform"),
            ((512, 1024), 1, "uniform"),
            ((512, 1024), 4, "uniform"),
            ((64, 256), 1, "zipf"),
            ((512, 1024), 1, "zipf"),
        ):
            cases.append(Case("bleu", *size(b, n), refs, 32000, dist, _bleu_impls(), rounds))
    if "rouge" in args.only:
        for b, n in ((512, 256), (64, 1024), (64, 256)):
            cases.append(Case("rouge", *size(b, n), 1, 32000, "uniform", _rouge_impls(), rounds, note=", ROUGE-1/2/L"))
        every = 4 if args.tiny else LSUM_SENTENCE
        lsum = Case("rouge", *size(64, 1024), 1, 32000, "uniform", _lsum_impls(every), rounds)
        lsum.note, lsum.extra = f", ROUGE-Lsum (separator every {every})", {"sentence_length": every}
        cases.append(lsum)
    if "self-bleu" in args.only:
        b, n = (16, 8) if args.tiny else (4096, 32)
        cases.append(Case("self-bleu", b, n, 1, 1000, "uniform", _self_bleu_impls(), rounds))
    if "gleu" in args.only:
        cases.append(Case("gleu", *size(512, 1024), 1, 32000, "uniform", _gleu_impls(), rounds))
    if "single" in args.only:
        single = {OURS: _bleu_impls()[OURS], "nltk": _bleu_impls()["nltk"]}
        n = 24 if args.tiny else 256
        cases.append(Case("single", 1, n, 1, 32000, "uniform", single, args.single_rounds, unit="µs"))
    for i, case in enumerate(cases):
        case.index = i
    return cases


# ------------------------------------------------------------ measuring
def _head(batch: Batch, rows: int) -> Batch:
    return Batch(
        batch.preds[:rows], batch.target[:rows], batch.pred_lens[:rows], batch.ref_lens[:rows], batch.vocab, batch.dist
    )


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def _estimate(impl: Impl, call: Callable[[], Any], batch: Batch) -> float:
    """Seconds per call: from the first rows of the batch, scaled up, then a full call (the warm-up) unless slow."""
    rows = max(1, min(batch.batch_size, batch.batch_size // 16))
    if rows < batch.batch_size:
        small, _ = _timed(impl.build(_head(batch, rows)))
        estimate = small * batch.batch_size / rows
        if estimate > SLOW_CALL_S:
            return estimate
    return _timed(call)[0]


def _burst(estimate: float) -> int:
    """Calls of one implementation in a round: back to back for about ``BURST_S`` (one for a slow call)."""
    return max(1, min(MAX_BURST, round(BURST_S / max(estimate, 1e-9))))


def _plan(estimates: dict[str, float], rounds: int, budget_s: float) -> tuple[int, dict[str, list[int]]]:
    """(rounds run, {impl: the rounds it joins}): this project joins every round, as many as ``budget_s`` allows
    it (up to ``rounds``); each peer as many of them as its own budget allows, at least one, spread over the run.
    ``estimates`` are seconds per round (a burst's calls)."""
    counts = {name: max(1, min(rounds, int(budget_s / max(est, 1e-9)))) for name, est in estimates.items()}
    total = counts[OURS]
    plan = {
        name: sorted({k * total // min(count, total) for k in range(min(count, total))})
        for name, count in counts.items()
    }
    plan[OURS] = list(range(total))
    return total, plan


@dataclass
class Timings:
    warm: dict[str, dict[int, float]]  # per implementation and round: seconds per call after the round's first
    first: dict[str, dict[int, float]]  # the round's first call, right after the other implementations' calls
    outs: dict[str, Any]  # the last output of each
    errors: dict[str, str]  # of those that raised


def _interleaved(
    calls: dict[str, Callable[[], Any]], plan: dict[str, list[int]], rounds: int, bursts: dict[str, int]
) -> Timings:
    """Each round calls every implementation that joins it (the order rotating from round to round), each
    ``bursts[name]`` times back to back: the first call timed alone, the others together (their mean is the
    round's warm time; with a burst of one, the first call is)."""
    got = Timings({name: {} for name in calls}, {name: {} for name in calls}, {}, {})
    joins = {name: set(rs) for name, rs in plan.items()}
    for r in range(rounds):
        active = [name for name in calls if r in joins[name] and name not in got.errors]
        if not active:
            break
        shift = r % len(active)
        for name in active[shift:] + active[:shift]:
            got.outs.pop(name, None)  # the previous output's memory is free for the call
            call, more = calls[name], bursts[name] - 1
            try:
                got.first[name][r], got.outs[name] = _timed(call)
                if more:
                    start = time.perf_counter()
                    for _ in range(more):
                        call()
                    got.warm[name][r] = (time.perf_counter() - start) / more
                else:
                    got.warm[name][r] = got.first[name][r]
            except Exception as exc:
                got.errors[name] = f"{type(exc).__name__}: {exc}"
    return got


def _measure(case: Case, batch: Batch, available: dict[str, str | None], args: argparse.Namespace, load: str) -> list:
    """One case under the current load: rows for this project and every peer."""
    base = {
        "case_index": case.index,
        "group": case.group,
        "case": case.title,
        "batch_size": case.batch_size,
        "length": case.length,
        "refs": case.refs,
        "vocab": case.vocab,
        "dist": case.dist,
        "load": load,
        "busy": args.busy if load == "busy" else 0,
        "unit": case.unit,
    }
    rows: dict[str, dict[str, Any]] = {}
    calls: dict[str, Callable[[], Any]] = {}
    estimates: dict[str, float] = {}
    for name, impl in case.impls.items():
        rows[name] = {**base, "impl": name, "label": impl.label, "status": "ok"}
        if available[name] is not None:
            rows[name].update(status="not available", error=available[name])
            continue
        try:
            # a call on a tiny batch first: imports, thread pools, compiled kernels
            impl.build(make_batch(2, 16, case.refs, case.vocab, case.seed + 1, case.dist))()
            calls[name] = impl.build(batch)
            estimates[name] = _estimate(impl, calls[name], batch)
        except Exception as exc:
            rows[name].update(status="error", error=f"{type(exc).__name__}: {exc}")
            calls.pop(name, None)
    if OURS not in calls:
        return list(rows.values())
    gc.collect()
    bursts = {name: _burst(est) for name, est in estimates.items()}
    total, plan = _plan({name: est * bursts[name] for name, est in estimates.items()}, case.rounds, args.time)
    got = _interleaved(calls, plan, total, bursts)
    scale = 1e6 if case.unit == "µs" else 1e3
    ours, ours_first = got.warm[OURS], got.first[OURS]
    for name in calls:
        row = rows[name]
        if name in got.errors:
            row.update(status="error", error=got.errors[name])
        warm, first = got.warm[name], got.first[name]
        if not warm:
            continue
        values = [warm[r] * scale for r in sorted(warm)]
        firsts = [first[r] * scale for r in sorted(first)]
        row.update(median=statistics.median(values), min=min(values), rounds=len(values), times=values)
        row.update(burst=bursts[name], first_median=statistics.median(firsts), first_times=firsts)
        if name != OURS:
            row["ratio"] = _paired(warm, ours)
            row["first_ratio"] = _paired(first, ours_first)
            impl = case.impls[name]
            if load == "idle" and impl.agree is not None and name in got.outs and name not in got.errors:
                try:
                    row.update(impl.agree(batch, got.outs[name]))
                except Exception as exc:
                    row["agreement_error"] = f"{type(exc).__name__}: {exc}"
    return list(rows.values())


def _paired(peer: dict[int, float], ours: dict[int, float]) -> float | None:
    """The median over the rounds both joined of (peer time / this project's time)."""
    ratios = [peer[r] / ours[r] for r in peer if r in ours]
    return statistics.median(ratios) if ratios else None


def _available(case: Case) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, impl in case.impls.items():
        try:
            importlib.import_module(impl.module)
            out[name] = None
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


# ------------------------------------------------------------ report
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


def _engine_threads() -> int | None:
    from tensorbleu_metrics import functional

    getter = getattr(functional, "get_cpu_threads", None)
    return int(getter()) if getter is not None else None


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}×" if value >= 10 else f"{value:.2f}×" if value < 1 else f"{value:.1f}×"


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Per group: one table of times and ratios (idle and busy rows), and the peers' agreement."""
    lines = [
        "# CPU engine benchmark",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; host: {meta['host']}; CPU: {meta['cpu']} ({meta['cpu_count']} logical CPUs)",
        f"- this project with the library's defaults: torch threads {meta['torch_threads']}"
        + (f", engine threads {meta['engine_threads']}" if meta.get("engine_threads") is not None else ""),
        f"- load: idle, then {meta['busy']} busy-looping process(es) beside this project and the peers alike"
        if meta["busy"]
        else "- load: idle only (--busy 0)",
        f"- {meta['rounds']} rounds per case and load (one sample: {meta['single_rounds']}), each implementation "
        f"limited to about {meta['time_s']} s of timed calls (at least one round); in a round, each implementation "
        f"in turn runs its calls back to back for about {meta.get('burst_ms', BURST_S * 1e3):g} ms (one call if "
        "slower): a time is the median over the rounds of the mean of the calls after the round's first; "
        "ratio = median over the rounds of (peer time / this project's time in the same round)",
        "- in brackets, where a round runs more than one call of this project: its first call of each round, "
        "right after the peers' calls (its code and data out of the caches), and the ratios against it",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        f"- wall time: {meta['wall_s']} s" + (" (partial: the run was still going)" if meta.get("partial") else ""),
    ]
    if meta.get("unavailable"):
        lines.append("- not available: " + "; ".join(f"{k} ({v})" for k, v in meta["unavailable"].items()))
    lines.append("")
    for group in GROUPS:
        grows = [r for r in rows if r["group"] == group]
        if not grows:
            continue
        unit = grows[0]["unit"]
        peers = list(dict.fromkeys(r["impl"] for r in grows if r["impl"] != OURS))
        lines += [f"## {TITLES[group]}", ""]
        head = f"| case | load | this project {unit} | (first call) |"
        head += "".join(f" {p} {unit} | × {p} |" for p in peers)
        lines += [head, "|---|---|---:|---:|" + "---:|---:|" * len(peers)]
        keys = list(dict.fromkeys((r["case_index"], r["case"], r["load"], r["busy"]) for r in grows))
        for index, case, load, busy in keys:
            by = {r["impl"]: r for r in grows if (r["case_index"], r["load"]) == (index, load)}
            ours = by.get(OURS, {})
            # the first call apart only where the round had more (a slow call runs alone: it is its own first)
            first = ours.get("first_median") if ours.get("burst", 1) > 1 else None
            cells = [_cell(ours), f"({_number(first)})" if first is not None else ""]
            for p in peers:
                r = by.get(p)
                ratio = _ratio(r.get("ratio")) if r and r.get("ratio") else ""
                if ratio and first is not None:
                    ratio += f" ({_ratio(r.get('first_ratio'))})"
                cells += [_cell(r), ratio]
            where = "idle" if load == "idle" else f"{busy} busy"
            lines.append(f"| {case} | {where} | " + " | ".join(cells) + " |")
        agree = [r for r in grows if r["load"] == "idle" and r["impl"] != OURS]
        if agree:
            lines += ["", "| peer | what | max \\|difference\\| to this project | against | rounds (idle) |"]
            lines.append("|---|---|---:|---|---|")
            for p in peers:
                prow = [r for r in agree if r["impl"] == p]
                known = [r for r in prow if r.get("max_abs_diff") is not None]
                worst = max(known, key=lambda r: r["max_abs_diff"]) if known else None
                diff = f"{worst['max_abs_diff']:.1e} ({worst['case']})" if worst else "—"
                against = worst.get("agreement_with", "") if worst else ""
                rounds = ", ".join(str(r.get("rounds", 0)) for r in prow)
                label = prow[0]["label"] if prow else ""
                lines.append(f"| {p} | {label} | {diff} | {against} | {rounds} |")
        lines.append("")
    return "\n".join(lines)


def _cell(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    if row.get("median") is not None:
        return _number(row["median"])
    return str(row.get("status", ""))


def _write(out_dir: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "engine.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    with open(os.path.join(out_dir, "engine.md"), "w") as fh:
        fh.write(markdown(meta, rows))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--busy",
        type=busy_count,
        default=os.cpu_count() or 1,
        metavar="N|cores",
        help="busy-looping processes beside the second measurement of every case (default: os.cpu_count(), "
        f"{os.cpu_count()} here; 0: idle only)",
    )
    p.add_argument("--only", default=",".join(GROUPS), help=f"comma list among {', '.join(GROUPS)} (all)")
    p.add_argument("--rounds", type=int, default=15, help="rounds of interleaved calls per case and load (15)")
    p.add_argument("--single-rounds", type=int, default=2000, help="rounds for the one-sample case (2000)")
    p.add_argument(
        "--time",
        type=float,
        default=12.0,
        help="seconds of timed calls per implementation, case and load: slower ones join fewer rounds (12)",
    )
    p.add_argument("--tiny", action="store_true", help="a few tokens per case: checks that everything runs")
    p.add_argument("--out", default=None, help="output folder (benchmarks/results/cpu)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in args.only if g not in GROUPS]
    if unknown:
        raise SystemExit(f"--only: unknown groups {unknown}; choose from {', '.join(GROUPS)}")
    if args.rounds < 1 or args.single_rounds < 1:
        raise SystemExit("--rounds and --single-rounds must be >= 1")
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpu")
    cases = build_cases(args)
    started = time.monotonic()
    meta: dict[str, Any] = {
        "command": "python -m benchmarks.engine " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "engine_threads": _engine_threads(),
        "busy": args.busy,
        "rounds": args.rounds,
        "single_rounds": args.single_rounds,
        "burst_ms": BURST_S * 1e3,
        "time_s": args.time,
        "tiny": args.tiny,
        "versions": _versions(),
        "unavailable": {},
    }
    rows: list[dict[str, Any]] = []
    loads = ["idle", "busy"] if args.busy else ["idle"]
    for i, case in enumerate(cases):
        available = _available(case)
        meta["unavailable"].update({k: v for k, v in available.items() if v is not None and k != OURS})
        batch = make_batch(case.batch_size, case.length, case.refs, case.vocab, case.seed, case.dist)
        for load in loads:
            t_case = time.monotonic()
            if load == "busy":
                with busy_processes(args.busy):
                    got = _measure(case, batch, available, args, load)
            else:
                got = _measure(case, batch, available, args, load)
            rows += got
            if not args.quiet:
                _progress(i + 1, len(cases), case, load, got, time.monotonic() - t_case)
        meta.update(wall_s=round(time.monotonic() - started, 1), partial=i + 1 < len(cases))
        _write(out_dir, meta, rows)  # after every case: an interrupted run keeps what it measured
    if not args.quiet:
        print(f"wrote {out_dir}/engine.json and engine.md in {meta['wall_s']} s", file=sys.stderr)
    return 0


def _progress(done: int, total: int, case: Case, load: str, rows: list[dict[str, Any]], seconds: float) -> None:
    parts = []
    for r in rows:
        shown = f"{_number(r['median'])} {case.unit}" if r.get("median") is not None else r["status"]
        ratio = f" ({_ratio(r['ratio'])})" if r.get("ratio") is not None else ""
        parts.append(f"{r['impl']} {shown}{ratio}")
    line = f"[{done}/{total}] {case.group} {case.title} {load}: " + "; ".join(parts) + f" [{seconds:.0f} s]"
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
