"""tensorbleu-metrics: exact BLEU on batches of token-ID tensors, as functions and a torchmetrics Metric."""

from tensorbleu_metrics import functional

__version__ = "0.1.0"

__all__ = ["__version__", "functional"]

try:  # the Metric lands in its own module; the functional API works without it
    from tensorbleu_metrics.metric import TokenIDBLEU  # noqa: F401

    __all__.append("TokenIDBLEU")
except ImportError:  # pragma: no cover
    pass
