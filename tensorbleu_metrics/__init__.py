"""tensorbleu-metrics: exact BLEU and ROUGE on batches of token-ID tensors, as functions and torchmetrics Metrics."""

from tensorbleu_metrics import functional
from tensorbleu_metrics.metric import TokenIDBLEU
from tensorbleu_metrics.rouge import TokenIDROUGE

__version__ = "0.1.0"

__all__ = ["TokenIDBLEU", "TokenIDROUGE", "__version__", "functional"]
