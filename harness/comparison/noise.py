"""The noise baseline: what an engine does against itself, and Diffy's rule.

An engine compared with itself should agree exactly, but the legacy does not
quite: the order in which the candidate query returned its rows, which
PostgreSQL does not promise, decides which candidate goes to the head of an
empty queue (spec §7: the first one processed), by how much every other
priority is shifted, which of two rows sharing a queue entry wins, and the
ids that order a tie. Two remedies, both measured here:

* **the order run**: the reference engine is run again with the candidate rows
  in the order B processed them (B's decisions are in processing order). What
  the reference does under that order is what B must do if it follows the
  reference's rules; a difference between A and B that this run reproduces is
  row order, not a finding. It covers every permutation exactly: the legacy
  against itself on any row order is never flagged.
* **self-runs**: once more as is and with the rows shuffled (``shuffles``
  seeds); every difference between those runs and the reference run is
  *noise*, measured per candidate and per field (its largest size).

A divergence is noise only **per candidate and per magnitude**: when it is no
larger than what the engine did to that same candidate's field against itself
(``|b − a| <= noise``), or when the order run reproduces B. Diffy's rule
(thresholds under ``noise:`` in the tolerances file) is still computed per
field, for the report: with ``raw`` candidates differing between A and B and
``noisy`` candidates differing between the engine's own runs, the field
differs beyond noise when the excess ``raw − noisy`` exceeds the **relative**
threshold against ``(raw + noisy) / 2`` **and** the **absolute** threshold
against the number compared. It no longer excuses anything by itself: a field
with some noise must not forgive a move a thousand times that noise.

A candidate that is missing, errors, or changes structure in a self-run is
noisy in that respect too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from engines.base import Engine
from engines.model import CandidateKey, Dataset, Schedule
from harness.comparison.alignment import (
    Key,
    Side,
    align,
    side_from_schedule,
    structures_differ,
)
from harness.comparison.comparison_model import (
    DECISION_FIELDS,
    QUEUE_FIELDS,
    NoiseBaseline,
    NoiseField,
    NoiseRule,
    RankMetrics,
)
from harness.comparison.ranking import rank_metrics_of

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def shuffled_dataset(dataset: Dataset, seed: int) -> Dataset:
    """The same dataset with the candidate query's rows in another order."""
    keys = [c.key for c in dataset.joined_candidates]
    random.Random(seed).shuffle(keys)
    return replace(dataset, candidate_row_order=tuple(keys))


def noise_runs(
    engine: Engine, dataset: Dataset, *, seed: int = 1, shuffles: int = 1
) -> list[tuple[str, Schedule]]:
    """The engine's self-runs: once more as is, and ``shuffles`` times with the
    rows shuffled (seeds ``seed``, ``seed + 1``, …)."""
    runs = [("rerun", engine.schedule(dataset))]
    for k in range(shuffles):
        runs.append(
            (
                f"shuffled candidate rows (seed {seed + k})",
                engine.schedule(shuffled_dataset(dataset, seed + k)),
            )
        )
    return runs


def processing_order(dataset: Dataset, schedule: Schedule) -> tuple[CandidateKey, ...] | None:
    """The dataset's candidate rows in the order ``schedule`` processed them
    (rows it never decided keep their place after those), or ``None`` when
    that is the dataset's own order."""
    rows = [c.key for c in dataset.joined_candidates]
    known = set(rows)
    # plain tuples hash and compare like CandidateKey, and cost a tenth to build
    seen: dict[Key, None] = dict.fromkeys(
        key
        for key in ((d.codebase, d.campaign, d.change_set) for d in schedule.decisions)
        if key in known
    )
    if len(seen) == len(rows) and all(x == y for x, y in zip(seen, rows, strict=True)):
        return None
    order = [CandidateKey(*key) for key in seen]
    order += [key for key in rows if key not in seen]
    return tuple(order)


def order_run(engine: Engine, dataset: Dataset, processed: Schedule) -> tuple[str, Schedule] | None:
    """The reference engine with the rows in the order ``processed`` (B) took
    them; ``None`` when that is the order the reference had anyway."""
    order = processing_order(dataset, processed)
    if order is None:
        return None
    label = f"candidate rows in B's processing order ({processed.engine})"
    return label, engine.schedule(replace(dataset, candidate_row_order=order))


def within_own_noise(delta: FloatArray, noise: FloatArray) -> BoolArray:
    """Per candidate: the engine moved this field at least as far against itself."""
    with np.errstate(invalid="ignore"):
        return np.asarray((noise > 0) & (delta <= noise), dtype=bool)


def field_beyond_noise(raw: int, noisy: int, compared: int, rule: NoiseRule) -> bool:
    """Diffy's rule for one field: do the A-vs-B divergences stand out of the noise?

    ``raw``: candidates where A and B differ beyond tolerance; ``noisy``:
    candidates where the engine differed from itself beyond tolerance;
    ``compared``: candidates compared. The excess ``raw − noisy`` must exceed
    both the relative threshold (against the mean of the two counts) and the
    absolute one (against all compared candidates). A field that never showed
    noise differs beyond noise as soon as it differs at all.
    """
    if noisy == 0:
        return raw > 0
    excess = raw - noisy
    if excess <= 0 or compared <= 0:
        return False
    return excess / ((raw + noisy) / 2) > rule.relative and excess / compared > rule.absolute


def field_deltas(va: FloatArray, na: BoolArray, vb: FloatArray, nb: BoolArray) -> FloatArray:
    """``|b − a|`` with the comparator's conventions: 0 where equal (both None,
    both NaN, same infinity), inf where one side is None or non-finite against
    a different value."""
    with np.errstate(invalid="ignore", over="ignore"):
        delta = np.abs(vb - va)
        equal = (na & nb) | (va == vb) | (np.isnan(va) & np.isnan(vb) & ~na & ~nb)
        delta = np.where(equal, 0.0, delta)
        delta = np.where(~equal & ((na ^ nb) | ~np.isfinite(delta)), np.inf, delta)
    return np.asarray(delta, dtype=np.float64)


@dataclass
class NoiseProfile:
    """Noise per reference key: ``fields[f][i]`` the largest self-run delta of
    field ``f`` for the reference's key ``i`` (inf: absent in a self-run);
    ``presence``/``error``/``structure``: flags; ``extra_keys``: keys that only
    self-runs produced (an extra key in B that is among them is noise)."""

    engine: str
    runs: tuple[str, ...]
    index: dict[Key, int]
    fields: dict[str, FloatArray]
    relative: dict[str, FloatArray]
    presence: BoolArray
    error: BoolArray
    structure: BoolArray
    extra_keys: frozenset[Key]
    rank: RankMetrics | None
    #: the reference in B's row order (:func:`order_run`), as columns
    order: Side | None = None
    order_label: str | None = None

    def lookup(self, keys: Sequence[Key]) -> npt.NDArray[np.int64]:
        """Index into the profile per key (-1 where the reference lacks it)."""
        get = self.index.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def baseline(self, rule: NoiseRule) -> NoiseBaseline:
        fields = []
        for name in (*DECISION_FIELDS, *QUEUE_FIELDS):
            values = self.fields[name]
            noisy = values > 0
            finite = values[noisy & np.isfinite(values)]
            rel = self.relative[name][noisy & np.isfinite(self.relative[name])]
            fields.append(
                NoiseField(
                    field=name,
                    candidates_noisy=int(noisy.sum()),
                    max_abs=float(finite.max()) if finite.size else 0.0,
                    max_rel=float(rel.max()) if rel.size else 0.0,
                )
            )
        return NoiseBaseline(
            self.engine, self.runs, tuple(fields), rule, self.rank, order_run=self.order_label
        )


def measure_noise(
    reference: Schedule | Side,
    runs: Sequence[tuple[str, Schedule | Side]],
    *,
    rbo_p: float = 0.9,
    order: tuple[str, Schedule] | None = None,
) -> NoiseProfile:
    """Compare the reference run with each self-run and keep the worst per key;
    ``order`` is the :func:`order_run`, kept whole for the comparison. A
    self-run may come as columns (:meth:`Side.detached`, from another process)."""
    ref = reference if isinstance(reference, Side) else side_from_schedule(reference)
    n = ref.size
    fields = {name: np.zeros(n) for name in (*DECISION_FIELDS, *QUEUE_FIELDS)}
    rel = {name: np.zeros(n) for name in fields}
    presence = np.zeros(n, dtype=bool)
    error = np.zeros(n, dtype=bool)
    structure = np.zeros(n, dtype=bool)
    extra: set[Key] = set()
    worst_rank: RankMetrics | None = None
    for _label, run in runs:
        other = run if isinstance(run, Side) else side_from_schedule(run)
        al = align(ref, other)
        presence[al.missing] = True
        for name in fields:
            fields[name][al.missing] = np.inf
        extra.update(other.keys[j] for j in al.extra)
        for name in fields:
            ca, cb = al.column_a(name), al.column_b(name)
            delta = field_deltas(ca.values, ca.null, cb.values, cb.null)
            fields[name][al.ia] = np.maximum(fields[name][al.ia], delta)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.maximum(np.abs(ca.values), np.abs(cb.values))
                r = np.where(scale > 0, delta / scale, 0.0)
            rel[name][al.ia] = np.maximum(rel[name][al.ia], np.nan_to_num(r, nan=np.inf))
        types_a = [ref.error_types[i] for i in al.ia]
        types_b = [other.error_types[j] for j in al.ib]
        for pos, (ta, tb) in enumerate(zip(types_a, types_b, strict=True)):
            if ta != tb:
                error[al.ia[pos]] = True
        ref_structures, other_structures = ref.structures, other.structures
        for i, j in zip(al.ia.tolist(), al.ib.tolist(), strict=True):
            if structures_differ(ref_structures[i], other_structures[j]):
                structure[i] = True
        if ref.queue_keys and other.queue_keys:
            metrics = rank_metrics_of(
                ref.queue_keys,
                ref.queue_scores,
                other.queue_keys,
                other.queue_scores,
                p=rbo_p,
                movers=20,
                common=(al.queue_a, al.queue_b),
                distinct=(len(ref.queue_pos), len(other.queue_pos)),
            )
            if worst_rank is None or metrics.rbo < worst_rank.rbo:
                worst_rank = metrics
    return NoiseProfile(
        engine=ref.schedule.engine,
        runs=tuple(label for label, _ in runs),
        index=dict(ref.index),
        fields=fields,
        relative=rel,
        presence=presence,
        error=error,
        structure=structure,
        extra_keys=frozenset(extra),
        rank=worst_rank,
        order=None if order is None else side_from_schedule(order[1]),
        order_label=None if order is None else order[0],
    )
