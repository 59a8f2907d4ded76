"""Token-ID metrics as pure functions on tensors: BLEU, GLEU, chrF, Self-BLEU, distinct-n and ROUGE."""

from tensorbleu_metrics.functional._counting import BLEUStats
from tensorbleu_metrics.functional._engine import get_cpu_threads, set_cpu_threads
from tensorbleu_metrics.functional._scoring import (
    SMOOTHING_METHODS,
    bleu_from_stats,
    check_bleu_options,
    counted_orders,
)
from tensorbleu_metrics.functional.bleu import bleu_stats, corpus_bleu, sentence_bleu
from tensorbleu_metrics.functional.chrf import (
    CHRFStats,
    check_chrf_options,
    chrf_from_stats,
    chrf_stats,
    corpus_chrf,
    sentence_chrf,
)
from tensorbleu_metrics.functional.diversity import distinct_ngrams, self_bleu
from tensorbleu_metrics.functional.gleu import (
    GLEUStats,
    check_gleu_options,
    corpus_gleu,
    gleu_from_stats,
    gleu_stats,
    sentence_gleu,
)
from tensorbleu_metrics.functional.rouge import ROUGE_KEYS, rouge_score

__all__ = [
    "ROUGE_KEYS",
    "SMOOTHING_METHODS",
    "BLEUStats",
    "CHRFStats",
    "GLEUStats",
    "bleu_from_stats",
    "bleu_stats",
    "check_bleu_options",
    "check_chrf_options",
    "check_gleu_options",
    "chrf_from_stats",
    "chrf_stats",
    "corpus_bleu",
    "corpus_chrf",
    "corpus_gleu",
    "counted_orders",
    "distinct_ngrams",
    "get_cpu_threads",
    "gleu_from_stats",
    "gleu_stats",
    "rouge_score",
    "self_bleu",
    "sentence_bleu",
    "sentence_chrf",
    "sentence_gleu",
    "set_cpu_threads",
]
