"""Plug the token-ID metrics into training frameworks: TRL's GRPOTrainer rewards, the Transformers Trainer, verl's
reward loop.

The submodules load on first access, so ``import tensorbleu_metrics`` never imports TRL, Transformers or verl.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["transformers", "trl", "verl"]


def __getattr__(name: str) -> ModuleType:
    # Lazy: `tensorbleu_metrics.integrations.trl` is only imported when asked for by name.
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
