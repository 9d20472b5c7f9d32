"""Rank metrics against values computed by hand, and the fast X_d against a naive one."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.model import QueueItem
from harness.comparison.ranking import prefix_overlaps, rank_metrics, rbo, tie_groups

ROOT = Path(__file__).resolve().parents[1]


def _queue(spec: list[tuple[str, int]]) -> list[QueueItem]:
    """Queue rows in the given order: (codebase, priority)."""
    return [
        QueueItem(id=i + 1, codebase=name, suite="c", command="x", priority=priority)
        for i, (name, priority) in enumerate(spec)
    ]


def test_rbo_identical_and_disjoint() -> None:
    assert rbo(list("abcde"), list("abcde")) == 1.0
    assert rbo(list("abc"), list("xyz")) == 0.0


def test_rbo_reversed_three_by_hand() -> None:
    # X = 0, 1, 3 at depths 1..3; p = 0.9:
    # (1-p)/p · (0·0.9 + 1/2·0.81 + 3/3·0.729) + 3/3 · 0.729 = 0.126 + 0.729
    assert rbo(["a", "b", "c"], ["c", "b", "a"], 0.9) == pytest.approx(0.855)


def test_rbo_swapped_head_by_hand() -> None:
    # [a b c d] vs [b a c d]: X = 0, 2, 3, 4; p = 0.5
    # (1-p)/p = 1 · (0 + 1·0.25 + 1·0.125 + 1·0.0625) + 1 · 0.0625 = 0.5
    assert rbo(list("abcd"), list("bacd"), 0.5) == pytest.approx(0.5)


def test_rbo_uneven_lengths_by_hand() -> None:
    # S = [a] (s=1), L = [a b] (l=2), p = 0.5: X1 = 1, X2 = 1, Xs = 1
    # (1-p)/p·[1·0.5 + 1/2·0.25 + 1·(2-1)/(1·2)·0.25] + [(1-1)/2 + 1/1]·0.25
    # = 0.5 + 0.125 + 0.125 + 0.25 = 1.0
    assert rbo(["a"], ["a", "b"], 0.5) == pytest.approx(1.0)
    # S = [b], L = [a b]: X1 = 0, X2 = 1, Xs = X1 = 0
    # (0 + 1/2·0.25 + 0) + [(1-0)/2 + 0]·0.25 = 0.125 + 0.125
    assert rbo(["b"], ["a", "b"], 0.5) == pytest.approx(0.25)


def test_rbo_ties_never_count_as_disagreement() -> None:
    # a, b tie on both sides; different tie-break order is no disagreement
    scores = [1, 1, 2]
    assert rbo(["a", "b", "c"], ["b", "a", "c"], 0.9, scores_a=scores, scores_b=scores) == 1.0
    # a tie on one side only: at depth 1, a is half inside A's prefix: X1 = 0.5
    # X = 0.5, 2, 3; p = 0.5: 1·(0.5·0.5 + 1·0.25 + 1·0.125) + 0.125 = 0.75
    value = rbo(["a", "b", "c"], ["a", "b", "c"], 0.5, scores_a=[1, 1, 2])
    assert value == pytest.approx(0.75)


def test_tie_groups_spans() -> None:
    groups = tie_groups([1, 1, 2, 3, 3, 3])
    assert groups.start.tolist() == [1, 1, 3, 4, 4, 4]
    assert groups.end.tolist() == [2, 2, 3, 6, 6, 6]
    assert groups.group.tolist() == [0, 0, 1, 2, 2, 2]


def test_rank_metrics_by_hand() -> None:
    a = _queue([("a", 1), ("b", 2), ("c", 3), ("d", 4)])
    b = _queue([("b", 1), ("a", 2), ("c", 3), ("d", 4)])
    m = rank_metrics(a, b, p=0.5, top_k=(1, 2, 10))
    # one discordant pair out of six: tau = (5 - 1) / 6
    assert m.kendall_tau_b == pytest.approx(4 / 6)
    # d² = 1 + 1: rho = 1 - 6·2 / (4·15) = 0.8
    assert m.spearman == pytest.approx(0.8)
    assert m.rbo == pytest.approx(0.5)
    assert [(t.k, t.effective_k, t.common, t.overlap) for t in m.top_k] == [
        (1, 1, 0.0, 0.0),
        (2, 2, 2.0, 1.0),
        (10, 4, 4.0, 1.0),
    ]
    assert m.moved == 2 and m.max_abs_displacement == 1
    assert m.mean_abs_displacement == pytest.approx(0.5)
    assert {(mv.codebase, mv.displacement) for mv in m.movers} == {("a", 1), ("b", -1)}


def test_rank_metrics_ties_and_one_sided_items() -> None:
    # a and b tie in A; B has them the other way round and an extra item first
    a = _queue([("a", 5), ("b", 5), ("c", 7)])
    b = _queue([("new", 1), ("b", 5), ("a", 5), ("c", 7)])
    m = rank_metrics(a, b)
    assert (m.common, m.only_a, m.only_b) == (3, 0, 1)
    assert m.moved == 0 and m.movers == ()
    assert m.kendall_tau_b == pytest.approx(1.0)  # tie groups agree
    assert m.rbo < 1.0  # the extra item at the top of B costs overlap


def test_rank_metrics_largest_movers_first() -> None:
    names = [f"n{i}" for i in range(20)]
    a = _queue([(n, i) for i, n in enumerate(names)])
    moved = names[1:] + names[:1]  # n0 drops from first to last
    b = _queue([(n, i) for i, n in enumerate(moved)])
    m = rank_metrics(a, b, movers=3)
    assert m.movers[0].codebase == "n0" and m.movers[0].displacement == 19
    assert (m.movers[0].rank_a, m.movers[0].rank_b) == (1, 20)
    assert len(m.movers) == 3 and m.moved == 20


def _naive_overlaps(a: list[int], b: list[int], sa: list[int], sb: list[int]) -> list[float]:
    ga, gb = tie_groups(sa), tie_groups(sb)
    pos_a = {x: i for i, x in enumerate(a)}
    pos_b = {x: i for i, x in enumerate(b)}
    out = [0.0]
    for d in range(1, max(len(a), len(b)) + 1):
        total = 0.0
        for x in set(a) & set(b):
            i, j = pos_a[x], pos_b[x]
            ma = min(1.0, max(0.0, (d - ga.start[i] + 1) / (ga.end[i] - ga.start[i] + 1)))
            mb = min(1.0, max(0.0, (d - gb.start[j] + 1) / (gb.end[j] - gb.start[j] + 1)))
            total += min(ma, mb)
        out.append(total)
    return out


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fast_prefix_overlaps_agree_with_the_definition(data: st.DataObject) -> None:
    a = data.draw(st.lists(st.integers(0, 30), min_size=1, max_size=25, unique=True))
    b = data.draw(st.lists(st.integers(0, 30), min_size=1, max_size=25, unique=True))
    sa = sorted(data.draw(st.lists(st.integers(0, 5), min_size=len(a), max_size=len(a))))
    sb = sorted(data.draw(st.lists(st.integers(0, 5), min_size=len(b), max_size=len(b))))
    ga, gb = tie_groups(sa), tie_groups(sb)
    pos_b = {x: j for j, x in enumerate(b)}
    ia = np.array([i for i, x in enumerate(a) if x in pos_b], dtype=np.int64)
    ib = np.array([pos_b[a[i]] for i in ia], dtype=np.int64)
    fast = prefix_overlaps(ga.start[ia], ga.end[ia], gb.start[ib], gb.end[ib], max(len(a), len(b)))
    assert np.allclose(fast, _naive_overlaps(a, b, sa, sb))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=30, unique=True),
    st.lists(st.integers(0, 40), min_size=1, max_size=30, unique=True),
    st.floats(min_value=0.05, max_value=0.95),
)
def test_rbo_without_ties_matches_the_set_formula(a: list[int], b: list[int], p: float) -> None:
    s, l = sorted((len(a), len(b)))  # noqa: E741
    x = [len(set(a[:d]) & set(b[:d])) for d in range(l + 1)]
    total = sum(x[d] / d * p**d for d in range(1, l + 1))
    total += sum(x[s] * (d - s) / (s * d) * p**d for d in range(s + 1, l + 1))
    expected = (1 - p) / p * total + ((x[l] - x[s]) / l + x[s] / s) * p**l
    assert rbo(a, b, p) == pytest.approx(min(1.0, expected), abs=1e-9)
    assert 0.0 <= rbo(a, b, p) <= 1.0
    assert math.isclose(rbo(a, b, p), rbo(b, a, p), abs_tol=1e-12)


def test_scipy_is_imported_when_first_needed() -> None:
    """A comparison loads scipy (half a second or more) while it waits for its
    noise runs (``load_statistics``), not when it imports the comparator."""
    code = (
        "import sys\n"
        "import harness.comparison.compare, harness.comparison.noise\n"
        "before = 'scipy.stats' in sys.modules\n"
        "from harness.comparison.ranking import load_statistics\n"
        "load_statistics()\n"
        "print(before, 'scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["False", "True"]
