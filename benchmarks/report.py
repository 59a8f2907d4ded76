"""results.json, results.md and the PNG figures."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from typing import Any

from benchmarks.impls import IMPLS

LEVELS = ("sentence", "corpus")


def add_speedups(rows: list[dict[str, Any]]) -> None:
    """``speedup_vs_nltk``: NLTK's median (same level, B, L, refs; same vocab if measured there, else another
    vocab: NLTK's cost does not depend on it) divided by the row's median."""
    base: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if IMPLS[r["impl"]].is_baseline and r.get("median_ms"):
            base[(r["level"], r["batch_size"], r["length"], r["num_refs"])][r["vocab"]] = r["median_ms"]
    for r in rows:
        r["speedup_vs_nltk"] = None
        ref = base.get((r["level"], r["batch_size"], r["length"], r["num_refs"]))
        if not ref or not r.get("median_ms"):
            continue
        nltk_ms = ref.get(r["vocab"], next(iter(ref.values())))
        r["speedup_vs_nltk"] = nltk_ms / r["median_ms"]
        r["nltk_median_ms"] = nltk_ms


def write_json(path: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    with open(path, "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1, default=str)


def _bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def _diff(r: dict[str, Any]) -> str:
    d = r.get("max_abs_diff")
    if r.get("agreement_with") == "reference":
        return "(reference)"
    if d is None:
        return "—"
    text = f"{d:.1e}"
    no_ties = r.get("max_abs_diff_no_ties")
    if r.get("tie_sentences") and no_ties is not None and no_ties != d:
        text += f" ({no_ties:.1e} w/o {r['tie_sentences']} ties)"
    return text


def _status_cells(r: dict[str, Any]) -> tuple[str, str]:
    status = r["status"]
    if status == "ok":
        return _ms(r.get("median_ms")), _ms(r.get("min_ms"))
    if status == "over time budget" and r.get("lower_bound_ms"):
        return f"> {_ms(r['lower_bound_ms'])} (over time budget)", "—"
    if status == "over memory budget" and r.get("lower_bound_bytes"):
        return f"over memory budget (> {_bytes(r['lower_bound_bytes'])})", "—"
    return status, "—"


def _warmup_time(args: dict) -> str:
    """The warm-up's time floor, for runs that recorded one (``--warmup-time``)."""
    seconds = args.get("warmup_time")
    return f" call(s) and at least {seconds} s of calls" if seconds and args.get("warmup") else ""


def write_markdown(path: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    lines = ["# TensorBLEU-metrics benchmark results", ""]
    if meta.get("partial"):
        lines += ["**Partial results: the run was still going (or was interrupted).**", ""]
    lines.append(f"- command: `{meta['command']}`")
    lines.append(f"- date: {meta['date']}; host: {meta['host']}")
    lines.append(f"- CPU: {meta['cpu']} ({meta['cpu_count']} cores, torch threads {meta['torch_threads']})")
    if meta.get("gpu"):
        lines.append(f"- GPU: {meta['gpu']}")
    lines.append(f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}")
    lines.append(
        f"- warm-up {meta['args']['warmup']}{_warmup_time(meta['args'])}, repeats {meta['args']['repeats']} "
        "(fewer for slow calls: about "
        f"{meta['args']['point_time']} s of timed calls per point, at least 3), time budget "
        f"{meta['args']['time_budget']} s per call (NLTK ×4), memory budget "
        f"{_bytes(meta['mem_budget_bytes']) if meta['mem_budget_bytes'] else 'none'} per point"
    )
    if meta.get("unavailable"):
        lines.append("- not available: " + "; ".join(f"{k}: {v}" for k, v in meta["unavailable"].items()))
    lines += [
        "",
        "Times include converting the token-ID tensors to each peer's input (`.tolist()`, joined strings). "
        "Peak memory: CUDA `max_memory_allocated` above the inputs; CPU peak RSS of the measuring process "
        "above its RSS after building the inputs; bytes/token divides it by the input tokens (candidates + "
        "references). max |diff|: largest absolute difference to this project's scores under the matching "
        "smoothing (CUDA rows of this project: to its CPU scores).",
        "",
    ]
    notes = {r["impl"]: IMPLS[r["impl"]].note for r in rows if IMPLS[r["impl"]].note}
    if notes:
        lines.append("Known semantic differences:")
        lines += [f"- {k}: {v}" for k, v in notes.items()]
        lines.append("")
    for level in LEVELS:
        sel = [r for r in rows if r["level"] == level]
        if not sel:
            continue
        lines += [f"## {level.capitalize()}-level BLEU", ""]
        lines.append(
            "| impl | device | B | L | refs | vocab | median ms | min ms | × NLTK | peak memory "
            "| bytes/token | max \\|diff\\| |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        sel.sort(key=lambda r: (r["num_refs"], r["vocab"], r["length"], r["batch_size"], r["device"], r["order"]))
        for r in sel:
            med, mn = _status_cells(r)
            sp = r.get("speedup_vs_nltk")
            bpt = r.get("bytes_per_token")
            lines.append(
                f"| {r['impl']} | {r['device']} | {r['batch_size']} | {r['length']} | {r['num_refs']} | "
                f"{r['vocab']} | {med} | {mn} | {f'{sp:.3g}' if sp else '—'} | "
                f"{_bytes(r.get('peak_bytes'))} | {f'{bpt:.0f}' if bpt is not None else '—'} | {_diff(r)} |"
            )
        lines.append("")
    errors = [r for r in rows if r["status"] == "error"]
    if errors:
        lines += ["## Errors", ""]
        lines += [f"- {r['impl']} {r['device']} {r['batch_size']}×{r['length']}: {r.get('error')}" for r in errors]
        lines.append("")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def write_plots(out_dir: str, rows: list[dict[str, Any]]) -> list[str]:
    """speedup_<level>.png and memory_<level>.png: one panel per (refs, vocab) row and length column."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for level in LEVELS:
        sel = [r for r in rows if r["level"] == level and r["status"] == "ok"]
        if not sel:
            continue
        panels = sorted({(r["num_refs"], r["vocab"]) for r in sel})
        lengths = sorted({r["length"] for r in sel})
        for what, key, ylabel in (
            ("speedup", "speedup_vs_nltk", "speed-up vs NLTK (×)"),
            ("memory", "peak_bytes", "peak memory (MiB)"),
        ):
            fig, axes = plt.subplots(
                len(panels), len(lengths), figsize=(5.2 * len(lengths), 3.8 * len(panels)), squeeze=False
            )
            drawn = False
            for i, (refs, vocab) in enumerate(panels):
                for j, length in enumerate(lengths):
                    ax = axes[i][j]
                    series: dict[tuple[str, str, int], list[tuple[int, float]]] = defaultdict(list)
                    measured_here = {
                        (r["impl"], r["device"])
                        for r in sel
                        if (r["num_refs"], r["vocab"], r["length"]) == (refs, vocab, length)
                    }
                    for r in sel:
                        if (r["num_refs"], r["length"]) != (refs, length):
                            continue
                        # peers whose cost does not depend on the vocabulary ran at another vocab only
                        borrowed = r["vocab"] != vocab
                        if borrowed and (IMPLS[r["impl"]].vocab_sensitive or (r["impl"], r["device"]) in measured_here):
                            continue
                        v = r.get(key)
                        if v is None or (what == "speedup" and IMPLS[r["impl"]].is_baseline):
                            continue
                        v = v / (1 << 20) if what == "memory" else v
                        if v <= 0 or not math.isfinite(v):
                            continue
                        series[(r["impl"], r["device"], r["vocab"] if borrowed else 0)].append((r["batch_size"], v))
                    for (impl, device, other_vocab), pts in sorted(series.items()):
                        pts.sort()
                        style = "-o" if IMPLS[impl].is_ours else "--s"
                        label = f"{impl} ({device})" + (f" [vocab {other_vocab}]" if other_vocab else "")
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label, ms=4)
                        drawn = True
                    if what == "speedup":
                        ax.axhline(1.0, color="grey", lw=0.8)
                    ax.set_xscale("log", base=2)
                    ax.set_yscale("log")
                    ax.set_title(f"{level}, L={length}, refs={refs}, vocab={vocab}", fontsize=9)
                    ax.set_xlabel("batch size")
                    ax.set_ylabel(ylabel)
                    ax.grid(True, which="both", alpha=0.3)
                    if series:
                        ax.legend(fontsize=6)
            if drawn:
                fig.tight_layout()
                path = os.path.join(out_dir, f"{what}_{level}.png")
                fig.savefig(path, dpi=90)
                written.append(path)
            plt.close(fig)
    return written
