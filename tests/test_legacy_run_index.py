"""The legacy's run index is shared by runs on the same run table (the noise
reruns); sharing it must not change a single number."""

from __future__ import annotations

from dataclasses import replace

import pytest
from paths import VECTORS

from engines.base import get_engine
from engines.legacy import memory
from harness.comparison.noise import shuffled_dataset
from harness.data.snapshot import load_snapshot


@pytest.mark.parametrize("name", ["quirks", "small"])
def test_a_shared_run_index_decides_as_a_fresh_one(name: str) -> None:
    dataset = load_snapshot(VECTORS / name)
    legacy = get_engine("legacy")
    first = legacy.schedule(dataset)
    assert memory.run_index(dataset.runs) is memory.run_index(dataset.runs)
    for seed in (1, 2):
        shuffled = shuffled_dataset(dataset, seed)
        assert shuffled.runs is dataset.runs
        shared = legacy.schedule(shuffled)  # reuses the index built for ``first``
        fresh = legacy.schedule(replace(shuffled, runs=tuple(list(dataset.runs))))
        assert memory.run_index(tuple(list(dataset.runs))) is not memory.run_index(dataset.runs)
        assert shared.decisions == fresh.decisions
        assert shared.queue == fresh.queue
    assert legacy.schedule(dataset).decisions == first.decisions
