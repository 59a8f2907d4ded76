"""Benchmark suite of tensorbleu_metrics: ``python -m benchmarks.run --help`` (see benchmarks/README.md)."""
