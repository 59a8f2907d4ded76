"""tensorbleu-metrics: exact BLEU on batches of token-ID tensors, as functions and a torchmetrics Metric."""

from tensorbleu_metrics import functional
from tensorbleu_metrics.metric import TokenIDBLEU

__version__ = "0.1.0"

__all__ = ["TokenIDBLEU", "__version__", "functional"]
