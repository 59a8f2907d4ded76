"""Runnable examples for tensorbleu_metrics (see examples/README.md)."""
