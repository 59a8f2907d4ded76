"""The private base of the token-ID metrics: exact states, failure-safe ``update``/``forward``, DDP of idle ranks.

Every reach into torchmetrics internals the metrics need lives here, listed in ``TORCHMETRICS_INTERNALS``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import Module
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from tensorbleu_metrics.functional._inputs import check_special_ids

__all__ = ["TORCHMETRICS_INTERNALS", "check_torchmetrics_internals"]

# What the base relies on. Attributes of a constructed Metric, then methods it overrides or calls, with the
# parameters they must accept. ``tests/test_metric_base.py`` checks each (and its behaviour) against the
# installed torchmetrics, so a release that changes one fails there, loudly, instead of silently here.
TORCHMETRICS_INTERNALS: dict[str, tuple[str, ...]] = {
    "attributes": (
        "_update_count",
        "_computed",
        "_forward_cache",
        "_defaults",
        "_reductions",
        "_persistent",
        "_is_synced",
        "_should_unsync",
        "_to_sync",
        "_enable_grad",
    ),
    "_wrap_update": ("update",),
    "_wrap_compute": ("compute",),
    "_sync_dist": ("dist_sync_fn", "process_group"),
    "_apply": ("fn", "exclude_state"),
    "merge_state": ("incoming_state",),
    "persistent": ("mode",),
}


def check_torchmetrics_internals() -> list[str]:
    """What of ``TORCHMETRICS_INTERNALS`` the installed torchmetrics lacks (an empty list when nothing).

    Example:
        >>> check_torchmetrics_internals()
        []
    """
    missing: list[str] = []

    class _Probe(Metric):
        def update(self) -> None:
            pass

        def compute(self) -> Tensor:
            return torch.zeros(())

    probe = _Probe()
    missing += [f"Metric.{name}" for name in TORCHMETRICS_INTERNALS["attributes"] if not hasattr(probe, name)]
    for method, params in TORCHMETRICS_INTERNALS.items():
        if method == "attributes":
            continue
        function = getattr(Metric, method, None)
        if not callable(function):
            missing.append(f"Metric.{method}()")
            continue
        accepted = inspect.signature(function).parameters
        missing += [f"Metric.{method}({p}=...)" for p in params if p not in accepted]
    return missing


class _TokenIDMetric(Metric):
    """Base of the token-ID metrics, holding three guarantees every one of them gives.

    - **Exact states.** States keep the dtype they were added with (int64 counts, float64 scores) whatever
      ``.half()``, ``.to(dtype)``, ``.type(...)`` or ``set_dtype(...)`` does to the metric or to a model holding
      it; only their device follows. Cached results are moved, never cast.
    - **A failing ``update`` or ``forward`` changes nothing**: tensor states, list states, the update count and
      the cached results are put back before the error propagates. ``update`` must therefore only replace
      tensor states (``self.x = self.x + ...``, never in place) and only append to list states.
    - **Idle ranks sync.** A process that saw no batch holds empty list states; it contributes an empty tensor
      of the shape and dtype declared with ``_add_list_state``, so the gather matches the other ranks.
    - **Options travel with the state.** Two metrics whose options differ never share or merge states: a
      ``MetricCollection`` never puts them in one compute group, and ``merge_state`` raises a ``ValueError``
      naming the option that differs.

    Subclasses declare their options with ``_declare_options`` and states with ``_add_sum_state`` /
    ``_add_list_state``, implement ``update`` and ``compute`` as usual, and may override
    ``_restore_shapes`` to undo torchmetrics' squeezing of one-element results.
    """

    is_differentiable: bool = False
    full_state_update: bool = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # per list state: the trailing shape and dtype of its tensors (what an empty contribution looks like)
        self._list_state_layout: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        # the options and the name of their marker state (see _declare_options)
        self._options: dict[str, Any] = {}
        self._options_state: str | None = None

    def _set_token_options(
        self, pad_id: Any, eos_id: Any, return_sentence_level_score: Any, validate: Any = True
    ) -> None:
        """Validate and keep the options every token-ID metric takes (IDs as Python ints)."""
        self.pad_id, self.eos_id = check_special_ids(pad_id, eos_id)
        for name, value in (("return_sentence_level_score", return_sentence_level_score), ("validate", validate)):
            if not isinstance(value, bool):
                raise TypeError(f"`{name}` must be a bool, got {value!r}.")
        self.return_sentence_level_score = return_sentence_level_score
        self.validate = validate

    @property
    def _token_option_values(self) -> dict[str, Any]:
        """The token options as ``_declare_options`` records them."""
        return {
            "pad_id": self.pad_id,
            "eos_id": self.eos_id,
            "return_sentence_level_score": self.return_sentence_level_score,
            "validate": self.validate,
        }

    @property
    def _token_options(self) -> dict[str, Any]:
        """The keyword arguments every functional call of an ``update`` takes from the metric's token options."""
        return {"pad_id": self.pad_id, "eos_id": self.eos_id, "validate": self.validate}

    # ------------------------------------------------------------------ declaring options and states
    def _declare_options(self, **options: Any) -> None:
        """Record the options that shape what the states hold, as a state named after them.

        ``MetricCollection`` puts metrics whose state names and values are equal after the first update into one
        compute group, which updates only its first member. A zero state whose name is a digest of the class and
        these options gives two metrics with other options different state names, so they never share one. The
        marker is never synced: it stays zero.
        """
        self._options = {name: _canonical(value) for name, value in options.items()}
        text = repr((type(self).__qualname__, sorted(self._options.items())))
        self._options_state = "_options_" + hashlib.sha256(text.encode()).hexdigest()[:16]
        self.add_state(self._options_state, torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def _add_sum_state(self, name: str, shape: Sequence[int] = (), dtype: torch.dtype = torch.int64) -> None:
        """A tensor state of zeros summed across processes (kept in ``dtype`` exactly)."""
        self.add_state(name, torch.zeros(tuple(shape), dtype=dtype), dist_reduce_fx="sum")

    def _add_list_state(self, name: str, tail_shape: Sequence[int] = (), dtype: torch.dtype = torch.float64) -> None:
        """A list state of ``(n, *tail_shape)`` tensors concatenated across processes on dim 0."""
        self.add_state(name, [], dist_reduce_fx="cat")
        self._list_state_layout[name] = (tuple(tail_shape), dtype)

    def _empty_list_value(self, name: str) -> Tensor:
        """The ``(0, *tail_shape)`` tensor standing for list state ``name`` when it holds nothing."""
        tail, dtype = self._list_state_layout[name]
        device = torch.device("cpu") if self.compute_on_cpu else self.device
        return torch.zeros((0, *tail), dtype=dtype, device=device)

    def _cat_list_state(self, name: str) -> Tensor:
        """List state ``name`` as one tensor (already one after a distributed sync; empty when nothing)."""
        value = getattr(self, name)
        if isinstance(value, Tensor):
            return value
        if value:
            return torch.cat([v.to(value[0].device) for v in value])
        return self._empty_list_value(name)

    def _restore_shapes(self, value: Any) -> Any:
        """Turn a ``compute`` result squeezed by torchmetrics back into its documented shape (identity here)."""
        return value

    def plot(self, val: Tensor | Sequence[Tensor] | None = None, ax: _AX_TYPE | None = None) -> _PLOT_OUT_TYPE:
        """Plot a single or multiple values from the metric.

        Args:
            val: A result of ``forward``/``compute`` or a list of them (of a ``(corpus, sentences)`` result the
                corpus score is plotted). If ``None``, ``compute()`` is called and its result plotted.
            ax: A matplotlib axis to draw on; a new figure is made when ``None``.

        Returns:
            Figure and Axes object

        Raises:
            ModuleNotFoundError: If ``matplotlib`` is not installed.
        """
        if val is None:
            val = self.compute()
        # a (corpus, sentences) result: the corpus value (a tensor, or a dict of them for several scores)
        if isinstance(val, tuple) and len(val) == 2 and isinstance(val[0], (Tensor, dict)):
            val = val[0]
        elif isinstance(val, Sequence):
            val = [v[0] if isinstance(v, tuple) else v for v in val]
        return self._plot(val, ax)

    # ------------------------------------------------------------------ torchmetrics internals
    def _wrap_update(self, update: Callable) -> Callable:
        wrapped = super()._wrap_update(update)

        @functools.wraps(update)
        def update_or_restore(*args: Any, **kwargs: Any) -> None:
            count, computed = self._update_count, self._computed
            saved = {}
            for key in self._defaults:
                value = getattr(self, key)
                saved[key] = (value, len(value)) if isinstance(value, list) else (value, None)
            try:
                wrapped(*args, **kwargs)
            except BaseException:
                for key, (value, length) in saved.items():
                    if length is not None:
                        del value[length:]  # list states only ever grow in update
                    setattr(self, key, value)
                self._update_count, self._computed = count, computed
                raise

        return update_or_restore

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Add the batch to the accumulated state and return its own value (see ``compute``).

        If the batch is invalid the error is raised and the accumulated state is left as it was.
        """
        saved = {k: list(v) if isinstance(v, list) else v for k, v in self.metric_state.items()}
        saved_count, saved_on_cpu = self._update_count, self.compute_on_cpu
        try:
            return super().forward(*args, **kwargs)
        except BaseException:
            # The base class resets the states before it updates with the batch: put everything back.
            for key, value in saved.items():
                setattr(self, key, value)
            self._update_count = saved_count
            self.compute_on_cpu = saved_on_cpu
            self._computed = None
            self._is_synced = False
            self._should_unsync = True
            self._to_sync = self.sync_on_compute
            self._enable_grad = False
            raise

    def _wrap_compute(self, compute: Callable) -> Callable:
        wrapped = super()._wrap_compute(compute)

        @functools.wraps(compute)
        def compute_keeping_shapes(*args: Any, **kwargs: Any) -> Any:
            return self._restore_shapes(wrapped(*args, **kwargs))

        return compute_keeping_shapes

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None) -> None:
        # A process that saw no batch has empty list states; torchmetrics would stand in a 1-D tensor of the
        # metric's default dtype for each, which does not match the tensors the other processes gather.
        # Contribute correctly shaped empty tensors instead. (The states were cached before this call, so
        # unsync() restores the empty lists.)
        for name in self._list_state_layout:
            value = getattr(self, name)
            if isinstance(value, list) and not value:
                setattr(self, name, [self._empty_list_value(name)])
        if self._options_state is None:
            super()._sync_dist(dist_sync_fn, process_group=process_group)
            return
        # the options marker is the same zero on every rank: one collective fewer
        reduction = self._reductions.pop(self._options_state)
        try:
            super()._sync_dist(dist_sync_fn, process_group=process_group)
        finally:
            self._reductions[self._options_state] = reduction

    def persistent(self, mode: bool = False) -> None:
        """Whether the states are saved in ``state_dict`` (the options marker never is: checkpoints hold counts)."""
        super().persistent(mode)
        if self._options_state is not None:
            self._persistent[self._options_state] = False

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add the state of another metric of the same class and options (or a ``metric_state`` dict of one).

        Raises:
            ValueError: If the other metric's options differ (the error names the first that does), or the dict's
                states do not have this metric's shapes.
        """
        if isinstance(incoming_state, _TokenIDMetric) and isinstance(incoming_state, type(self)):
            for name, value in self._options.items():
                other = incoming_state._options.get(name)
                if other != value:
                    raise ValueError(
                        f"Cannot merge the state of a {type(self).__name__} with `{name}={other!r}` into one with "
                        f"`{name}={value!r}`: their states count different things."
                    )
        elif isinstance(incoming_state, dict):
            markers = [key for key in incoming_state if key.startswith("_options_")]
            if markers and markers != [self._options_state]:
                raise ValueError(
                    f"Cannot merge this state into the {type(self).__name__}: it comes from a metric with other "
                    "options, whose states count different things."
                )
            if self._options_state is not None:
                incoming_state = {self._options_state: getattr(self, self._options_state), **incoming_state}
            for key, value in incoming_state.items():
                own = getattr(self, key, None) if key in self._defaults else None
                if isinstance(own, Tensor) and (not isinstance(value, Tensor) or value.shape != own.shape):
                    shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                    raise ValueError(
                        f"Cannot merge state `{key}` of shape {shape} into the {type(self).__name__}, whose "
                        f"`{key}` has shape {tuple(own.shape)}: the state comes from a metric with other options."
                    )
        super().merge_state(incoming_state)

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = ()) -> Module:
        # nn.Module conversions (.to(dtype), .half(), set_dtype, ...) must never turn exact states into
        # low-precision floats: let the base class handle everything except our states (and cached results),
        # then move those to the new device keeping their dtype.
        own = [key for key in self._defaults if key not in exclude_state]
        computed, forward_cache = self._computed, self._forward_cache
        self._computed = self._forward_cache = None
        this = super()._apply(fn, exclude_state=(*exclude_state, *own))
        device = this.device
        for key in own:
            default = this._defaults[key]
            if isinstance(default, Tensor):
                this._defaults[key] = default.to(device)
            value = getattr(this, key)
            if isinstance(value, Tensor):
                setattr(this, key, value.to(device))
            elif not this.compute_on_cpu:  # with compute_on_cpu, list states stay on the CPU
                setattr(this, key, [v.to(device) for v in value])
        this._computed = _to_device(computed, device)
        this._forward_cache = _to_device(forward_cache, device)
        return this


def _canonical(value: Any) -> Any:
    """An option as plain Python values (tensors and arrays as nested tuples), for an exact, stable ``repr``."""
    if isinstance(value, (Tensor, np.ndarray)):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to_device(v, device) for v in value)
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value
