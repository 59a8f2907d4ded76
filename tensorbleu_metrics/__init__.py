"""tensorbleu-metrics: exact n-gram metrics (BLEU, GLEU, Self-BLEU, distinct-n, ROUGE) on token-ID tensors, as
functions and torchmetrics Metrics."""

from tensorbleu_metrics import functional
from tensorbleu_metrics.gleu import TokenIDGLEU
from tensorbleu_metrics.metric import TokenIDBLEU
from tensorbleu_metrics.rouge import TokenIDROUGE

__version__ = "0.1.0"

__all__ = ["TokenIDBLEU", "TokenIDGLEU", "TokenIDROUGE", "__version__", "functional"]
