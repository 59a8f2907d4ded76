"""Every ``Metric`` class under real ``torch.distributed``: gloo, 2 CPU processes from ``torch.multiprocessing``.

One spawn runs the scenarios of every spec of ``metric_harness`` (uneven, idle and all-idle ranks, ``forward``,
``dist_sync_on_step``, ``compute_on_cpu``, no sync); the parent checks each spec's results against the
single-process functional result and the oracle on the same sentences.
"""

from __future__ import annotations

import pytest
from corpus_utils import run_on_gloo
from metric_harness import SPECS, WORLD_SIZE, MetricSpec, check_ddp, ddp_scenarios, run_scenario

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # NLTK's zero counts, compute before update


@pytest.fixture(scope="module")
def gloo_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return run_on_gloo(run_scenario, ddp_scenarios(), WORLD_SIZE, tmp_path_factory.mktemp("gloo"))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_ddp_gloo_two_processes(spec: MetricSpec, gloo_results: list[dict]) -> None:
    check_ddp(spec, gloo_results)
