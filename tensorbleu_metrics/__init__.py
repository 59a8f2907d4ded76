"""tensorbleu-metrics: exact n-gram metrics (BLEU, GLEU, Self-BLEU, distinct-n) on token-ID tensors, as functions
and torchmetrics Metrics."""

from tensorbleu_metrics import functional
from tensorbleu_metrics.gleu import TokenIDGLEU
from tensorbleu_metrics.metric import TokenIDBLEU

__version__ = "0.1.0"

__all__ = ["TokenIDBLEU", "TokenIDGLEU", "__version__", "functional"]
