"""The private metric base against the installed torchmetrics: every internal it relies on, and its guarantees.

If a torchmetrics release renames or changes one of those internals, these tests fail and name it. That every
metric uses the base, and keeps its guarantees, is checked over the metric specs in ``tests/test_metric_common.py``.
"""

from __future__ import annotations

import inspect
import pickle

import pytest
import torch
from torch import Tensor
from torchmetrics import Metric

from tensorbleu_metrics._metric_base import TORCHMETRICS_INTERNALS, _TokenIDMetric, check_torchmetrics_internals

BIG = 2**40 + 1  # past float16's range and float32's integer precision


class _Toy(_TokenIDMetric):
    """Two int64 sums and a float64 list state of (n, 3) rows; ``update(x, fail=True)`` fails after changing all."""

    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sum_state("count", (2,))
        self._add_sum_state("total")
        self._add_list_state("rows", (3,), torch.float64)

    def update(self, x: Tensor, fail: bool = False) -> None:
        self.count = self.count + torch.tensor([1, x.shape[0]], device=self.count.device)
        self.total = self.total + x.sum().to(torch.int64)
        self.rows.append(x.to(torch.float64).unsqueeze(1).expand(-1, 3) / 3)
        if fail:
            raise ValueError("`x` is bad")

    def compute(self) -> tuple[Tensor, Tensor]:
        return self.total.to(torch.float64), self._cat_list_state("rows")


def _state(metric: _Toy) -> tuple:
    rows = metric.rows
    rows = rows.clone() if isinstance(rows, Tensor) else [r.clone() for r in rows]
    return metric.count.clone(), metric.total.clone(), rows, metric.update_count


def _same(a: tuple, b: tuple) -> None:
    assert torch.equal(a[0], b[0]) and a[0].dtype == b[0].dtype
    assert torch.equal(a[1], b[1]) and a[1].dtype == b[1].dtype
    assert len(a[2]) == len(b[2]) and all(torch.equal(x, y) for x, y in zip(a[2], b[2], strict=True))
    assert a[3] == b[3]


# ----------------------------------------------------------------------------- the torchmetrics internals used
def test_every_internal_the_base_relies_on_exists():
    assert check_torchmetrics_internals() == []


def test_the_internals_list_names_what_the_base_overrides():
    overridden = {
        name for name, member in vars(_TokenIDMetric).items() if callable(member) and name.startswith("_wrap")
    } | {"_sync_dist", "_apply"}
    assert overridden <= set(TORCHMETRICS_INTERNALS)


def test_update_wrapper_counts_and_clears_the_cache_before_update():
    # the base restores `_update_count` and `_computed` because torchmetrics changes both before `update` runs
    seen = {}

    class Probe(Metric):
        def update(self) -> None:
            seen["count"], seen["computed"] = self._update_count, self._computed

        def compute(self) -> Tensor:
            return torch.zeros(())

    probe = Probe()
    probe._computed = "cached"
    probe.update()
    assert seen == {"count": 1, "computed": None}


def test_reduce_state_forward_resets_before_updating():
    # the base's forward puts the states back because torchmetrics resets them before the batch's update
    seen = {}

    class Probe(Metric):
        full_state_update = False

        def __init__(self) -> None:
            super().__init__()
            self.add_state("n", torch.tensor(5), dist_reduce_fx="sum")

        def update(self) -> None:
            seen["n"] = int(self.n)
            raise ValueError("bad")

        def compute(self) -> Tensor:
            return self.n

    probe = Probe()
    with pytest.raises(ValueError):
        probe()
    assert seen == {"n": 5}  # the default, not an accumulated state
    assert set(inspect.signature(Metric._forward_reduce_state_update).parameters) >= {"args", "kwargs"}


def test_apply_leaves_excluded_states_alone():
    probe = _Toy()
    count = probe.count
    Metric._apply(probe, lambda t: t.half() if t.is_floating_point() else t, exclude_state=("count",))
    assert probe.count is count


def test_sync_dist_reads_the_states_set_on_the_metric():
    # two fake ranks: the gather returns each tensor twice
    metric = _Toy()
    metric.update(torch.tensor([1, 2]))
    metric._sync_dist(lambda t, group=None: [t, t])
    assert torch.equal(metric.count, torch.tensor([2, 4])) and int(metric.total) == 6
    assert isinstance(metric.rows, Tensor) and metric.rows.shape == (4, 3)


# ------------------------------------------------------------------------------------------ the guarantees
@pytest.mark.parametrize("use_forward", [False, True], ids=["update", "forward"])
def test_failed_update_or_forward_changes_nothing(use_forward):
    metric = _Toy()
    metric.update(torch.tensor([1, 2, 3]))
    metric(torch.tensor([4]))
    cached = metric.compute()
    before = _state(metric)
    with pytest.raises(ValueError, match="`x` is bad"):
        if use_forward:
            metric(torch.tensor([5, 6]), fail=True)
        else:
            metric.update(torch.tensor([5, 6]), fail=True)
    _same(before, _state(metric))
    if not use_forward:
        assert metric._computed is cached  # the cached result stays valid
    total, rows = metric.compute()
    assert total.item() == 10 and rows.shape == (4, 3)
    metric.update(torch.tensor([7]))
    assert metric.compute()[0].item() == 17 and metric.update_count == 3


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: m.half(),
        lambda m: m.bfloat16(),
        lambda m: m.to(torch.float16),
        lambda m: m.set_dtype(torch.half),
        lambda m: m.type(torch.float16),
        lambda m: m.double(),
    ],
)
def test_dtype_conversions_keep_states_and_cache_exact(convert):
    metric = _Toy()
    metric.update(torch.tensor([BIG, 1]))
    total, rows = metric.compute()
    metric = convert(metric)
    assert metric.count.dtype == metric.total.dtype == torch.int64 and int(metric.total) == BIG + 1
    assert metric._defaults["total"].dtype == torch.int64
    assert metric.rows[0].dtype == torch.float64
    assert metric._computed[0].dtype == torch.float64 and torch.equal(metric._computed[0], total)
    assert torch.equal(metric._computed[1], rows)
    metric.update(torch.tensor([1]))
    assert int(metric.compute()[0]) == BIG + 2


def test_idle_rank_contributes_a_shaped_empty_tensor():
    idle = _Toy()
    idle._sync_dist(lambda t, group=None: [t, t])
    assert idle.rows.shape == (0, 3) and idle.rows.dtype == torch.float64
    assert idle._cat_list_state("rows").shape == (0, 3)
    assert _Toy()._cat_list_state("rows").shape == (0, 3)


def test_pickle_and_clone_keep_the_wrappers():
    metric = _Toy()
    metric.update(torch.tensor([1]))
    for copy in (pickle.loads(pickle.dumps(metric)), metric.clone()):
        before = _state(copy)
        with pytest.raises(ValueError):
            copy.update(torch.tensor([2]), fail=True)
        _same(before, _state(copy))
