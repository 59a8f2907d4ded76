"""Token-ID metrics as pure functions on tensors: BLEU (statistics, smoothing, sentence and corpus scores), ROUGE."""

from tensorbleu_metrics.functional._counting import BLEUStats
from tensorbleu_metrics.functional._scoring import (
    SMOOTHING_METHODS,
    bleu_from_stats,
    check_bleu_options,
    counted_orders,
)
from tensorbleu_metrics.functional.bleu import bleu_stats, corpus_bleu, sentence_bleu
from tensorbleu_metrics.functional.rouge import ROUGE_KEYS, rouge_score

__all__ = [
    "ROUGE_KEYS",
    "SMOOTHING_METHODS",
    "BLEUStats",
    "bleu_from_stats",
    "bleu_stats",
    "check_bleu_options",
    "corpus_bleu",
    "counted_orders",
    "rouge_score",
    "sentence_bleu",
]
