"""Device policy: what a call may do on the device its tensors live on, and small constants moved there.

Callers reach these through the module (``_device.host_reads_are_free(...)``), never by importing the names, so
that tests patching ``_device.host_reads_are_free`` run the accelerator's path on the CPU everywhere.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor


def host_reads_are_free(device: torch.device) -> bool:
    """Whether reading a tensor's values on the host costs no synchronisation with the device (the CPU).

    Where it does, the counts run the compiled engine and the input checks read values to skip masks; where it
    does not, the torch sorted pass counts, with tables sized from shapes alone, and nothing is read that could
    be skipped. Tests patch this to run the accelerator's path on the CPU.
    """
    return device.type == "cpu"


@functools.lru_cache(maxsize=64)
def _cached_constant(
    values: tuple[Any, ...], shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> Tensor:
    return torch.tensor(values, dtype=dtype, device=device).view(shape)


def on_device(values: Tensor, device: torch.device) -> Tensor:
    """A small constant host tensor (weights, digit values) on ``device``; callers must not modify the result.

    On the CPU, ``values`` itself. Elsewhere one copy per distinct (values, dtype, device), kept (64 at most):
    later calls launch no copy, and a call captured in a CUDA graph finds the constant already there (a copy
    from pageable host memory cannot be captured).
    """
    if device.type == "cpu":
        return values
    return _cached_constant(tuple(values.flatten().tolist()), tuple(values.shape), values.dtype, device)
