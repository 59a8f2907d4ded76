"""tensorbleu-metrics: exact n-gram metrics (BLEU, GLEU, Self-BLEU, distinct-n, ROUGE) on token-ID tensors, as
functions and torchmetrics Metrics.

The ``Metric`` classes load on first access, so ``import tensorbleu_metrics.functional`` (all a reward worker
needs) never imports torchmetrics, nor what torchmetrics imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tensorbleu_metrics import functional

if TYPE_CHECKING:
    from tensorbleu_metrics.bleu import TokenIDBLEU
    from tensorbleu_metrics.chrf import TokenIDCHRF
    from tensorbleu_metrics.gleu import TokenIDGLEU
    from tensorbleu_metrics.rouge import TokenIDROUGE

__version__ = "0.1.0"

__all__ = ["TokenIDBLEU", "TokenIDCHRF", "TokenIDGLEU", "TokenIDROUGE", "__version__", "functional"]

# name -> the module defining it, imported on first access
_LAZY = {"TokenIDBLEU": "bleu", "TokenIDCHRF": "chrf", "TokenIDGLEU": "gleu", "TokenIDROUGE": "rouge"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
