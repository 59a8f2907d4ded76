"""Token-ID BLEU as pure functions on tensors: statistics, smoothing, sentence and corpus scores."""

from tensorbleu_metrics.functional._counting import BLEUStats
from tensorbleu_metrics.functional._scoring import (
    SMOOTHING_METHODS,
    bleu_from_stats,
    check_bleu_options,
    counted_orders,
)
from tensorbleu_metrics.functional.bleu import bleu_stats, corpus_bleu, sentence_bleu

__all__ = [
    "SMOOTHING_METHODS",
    "BLEUStats",
    "bleu_from_stats",
    "bleu_stats",
    "check_bleu_options",
    "corpus_bleu",
    "counted_orders",
    "sentence_bleu",
]
