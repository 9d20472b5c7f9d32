"""A seeded generator of realistic Janitor-like data, with the truth behind it.

Every candidate's runs are drawn from a latent model — a success rate (on the
logit scale: campaign mean + codebase effect + candidate noise, drifting
linearly over the history window for some candidates) and a lognormal
duration (campaign median × codebase factor, scaled per result code) — and
that model is recorded beside the data, so that an engine's success
probabilities and duration estimates can be scored against what was really
true at ``as_of``.

Bulk draws use numpy's ``Generator``; each part of the dataset has its own
seeded stream, so the output is a pure function of the settings. The data's
awkward corners (boundary worker failures, NULLs, runs only in other
campaigns, a campaign without runs) are always present; the ones that make
the legacy raise (``push-derived`` policies, NULL candidate values, change-set
candidates, Debian's ``<<``/``>>`` operators) only when their fraction is
above zero.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from engines.bulk import bulk_allocation
from engines.model import (
    US_PER_DAY,
    US_PER_SECOND,
    Candidate,
    CandidateKey,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    Provenance,
    Run,
    datetime_to_us,
)
from harness.data.atomic import atomic_file
from harness.errors import InputError
from scenarios.campaigns import (
    CAMPAIGN_WITHOUT_RUNS,
    CAMPAIGNS,
    DURATION_MULTIPLIER,
    LINTIAN_TAGS,
    MULTIARCH_HINTS,
    TRANSIENT_CODES,
    CampaignSpec,
)
from scenarios.settings import DEFAULT_AS_OF as DEFAULT_AS_OF  # the generator's public names
from scenarios.settings import GeneratorSettings

TRUTH_FILE = "truth.jsonl.gz"
TRUTH_FORMAT = "janitor-shadow-generator-truth"
#: Run durations are capped (the runner times a run out after an hour of
#: silence; whole runs rarely exceed a few hours).
MAX_DURATION_US = 6 * 3600 * US_PER_SECOND
MIN_DURATION_US = US_PER_SECOND


@dataclass(frozen=True, slots=True)
class CandidateTruth:
    """The latent model behind one candidate's runs.

    ``success_probability`` is the probability, at ``as_of``, that the
    candidate's next run which does not fail transiently ends in ``success``;
    ``expected_duration_us`` is the expected duration of that run (whatever
    its outcome). ``transient_failure_rate`` is the share of runs that fail
    with ``failure_transient`` true.
    """

    key: CandidateKey
    success_probability: float
    success_probability_start: float
    drifts: bool
    expected_duration_us: int
    duration_log_mu: float
    duration_log_sigma: float
    transient_failure_rate: float
    runs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "codebase": self.key.codebase,
            "campaign": self.key.campaign,
            "change_set": self.key.change_set,
            "success_probability": self.success_probability,
            "success_probability_start": self.success_probability_start,
            "drifts": self.drifts,
            "expected_duration_us": self.expected_duration_us,
            "duration_log_mu": self.duration_log_mu,
            "duration_log_sigma": self.duration_log_sigma,
            "transient_failure_rate": self.transient_failure_rate,
            "runs": self.runs,
        }


@dataclass(frozen=True)
class Truth:
    """The generator's truth for a whole dataset, per candidate key."""

    as_of: datetime
    settings: Mapping[str, Any]
    candidates: Mapping[CandidateKey, CandidateTruth]

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, key: CandidateKey) -> CandidateTruth:
        return self.candidates[key]


@dataclass(frozen=True)
class GeneratedScenario:
    dataset: Dataset
    truth: Truth
    settings: GeneratorSettings
    stats: Mapping[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- names

_SYLLABLES = (
    "co", "go", "ba", "xml", "tor", "gtk", "qt", "ma", "ne", "ha", "doc", "png", "curl",
    "sql", "kde", "wa", "lin", "mo", "zi", "ra", "pe", "fu", "so", "te", "vi", "lu", "ki",
    "no", "da", "be", "ce", "fo", "gu", "jo", "ly", "my", "ny", "py", "ze", "ox",
)  # fmt: skip
_PREFIXES = (
    "", "", "", "", "python-", "python3-", "r-cran-", "golang-", "node-", "ruby-", "lib",
    "php-", "haskell-", "rust-", "libjs-",
)  # fmt: skip
_SUFFIXES = (
    "", "", "", "", "", "-perl", "-java", "-utils", "-tools", "-ng", "2", "-doc", "-data",
    "-common", "+dfsg",
)  # fmt: skip
_TEAMS = (
    "python-team/packages", "js-team", "qt-kde-team/kde", "debian", "go-team/packages",
    "r-pkg-team", "perl-team/modules/packages", "ruby-team", "rust-team", "science-team",
    "med-team", "haskell-team", "java-team", "games-team",
)  # fmt: skip
_DISTRIBUTIONS = ("unstable", "testing", "bookworm", "bookworm-backports", "experimental")
_DEP_OPS = (">=", "<=", "=", ">", "<")
_DEP_OP_WEIGHTS = (0.6, 0.1, 0.15, 0.05, 0.1)
_DEP_OP_CUMULATIVE = tuple(np.cumsum(_DEP_OP_WEIGHTS).tolist())


def _unique_names(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct Debian-like source package names, in draw order."""
    syllables = np.array(_SYLLABLES, dtype=object)
    prefixes = np.array(_PREFIXES, dtype=object)
    suffixes = np.array(_SUFFIXES, dtype=object)
    seen: dict[str, None] = {}
    rounds = 0
    while len(seen) < count:
        batch = max(64, int((count - len(seen)) * 1.3))
        length = rng.choice(np.array([1, 2, 3]), size=batch, p=(0.1, 0.55, 0.35))
        parts = [syllables[rng.integers(0, len(_SYLLABLES), size=batch)] for _ in range(3)]
        pre = prefixes[rng.integers(0, len(_PREFIXES), size=batch)]
        suf = suffixes[rng.integers(0, len(_SUFFIXES), size=batch)]
        tag = rng.integers(0, 100, size=batch) if rounds > 20 else None
        for i in range(batch):
            stem = "".join(parts[k][i] for k in range(int(length[i])))
            name = f"{pre[i]}{stem}{suf[i]}"
            if tag is not None:  # combinations exhausted: number them
                name = f"{name}{tag[i]}"
            if len(name) >= 2 and name not in seen:
                seen[name] = None
                if len(seen) == count:
                    break
        rounds += 1
    return list(seen)


def _version(rng: np.random.Generator, count: int) -> list[str]:
    """Debian version strings: some epochs, some ``+dfsg`` / ``~rc`` parts."""
    major = rng.integers(0, 12, size=count)
    minor = rng.integers(0, 30, size=count)
    patch = rng.integers(0, 20, size=count)
    revision = rng.integers(1, 6, size=count)
    flavour = rng.random(count)
    epoch = rng.random(count) < 0.08
    out = []
    for i in range(count):
        upstream = f"{major[i]}.{minor[i]}.{patch[i]}"
        if flavour[i] < 0.06:
            upstream += "+dfsg"
        elif flavour[i] < 0.09:
            upstream += f"~rc{1 + int(patch[i]) % 3}"
        prefix = f"{1 + int(minor[i]) % 3}:" if epoch[i] else ""
        out.append(f"{prefix}{upstream}-{revision[i]}")
    return out


# ---------------------------------------------------------------- helpers


def _stream(seed: int, part: int) -> np.random.Generator:
    """One independent stream per part of the dataset."""
    return np.random.default_rng([seed, part])


def _weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices, chosen with probability ∝ weight (Gumbel top-k)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=len(weights))
    chosen = np.argpartition(-keys, k - 1)[:k]
    return np.sort(chosen)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _allocate(total: int, weights: Sequence[float], caps: Sequence[int]) -> list[int]:
    """Split ``total`` by ``weights`` (largest remainders), respecting ``caps``."""
    counts = [0] * len(weights)
    remaining = min(total, sum(caps))
    active = [i for i in range(len(weights)) if caps[i] > 0]
    while remaining > 0 and active:
        wsum = sum(weights[i] for i in active)
        shares = {i: remaining * weights[i] / wsum for i in active}
        floors = {i: min(int(shares[i]), caps[i] - counts[i]) for i in active}
        given = sum(floors.values())
        for i in active:
            counts[i] += floors[i]
        left = remaining - given
        order = sorted(active, key=lambda i: (-(shares[i] - int(shares[i])), i))
        for i in order:
            if left == 0:
                break
            if counts[i] < caps[i]:
                counts[i] += 1
                left -= 1
        remaining = left
        active = [i for i in active if counts[i] < caps[i]]
        if given == 0 and left == remaining and remaining > 0 and not active:
            break
    return counts


# ---------------------------------------------------------------- the generator


def generate(settings: GeneratorSettings) -> GeneratedScenario:
    """Draw a whole dataset and its truth from ``settings``."""
    settings.validate()
    with bulk_allocation():  # millions of acyclic rows: the cyclic GC only slows them down
        return _Builder(settings).build()


class _Builder:
    """One generation: the settings, the arrays drawn so far, and the steps."""

    def __init__(self, settings: GeneratorSettings) -> None:
        self.s = settings
        self.campaigns: tuple[CampaignSpec, ...] = CAMPAIGNS[: settings.campaigns]
        self.as_of_us = datetime_to_us(settings.as_of)
        self.history_us = settings.history_days * US_PER_DAY

    # -- codebases ------------------------------------------------------

    def codebases(self) -> None:
        rng = _stream(self.s.seed, 1)
        n = self.s.codebase_count
        self.cb_names = _unique_names(rng, n)
        # Zipf-like popularity: value ∝ rank^-1.1, with some noise.
        rank = rng.permutation(n) + 1
        raw = 90_000.0 * rank**-1.1 * rng.lognormal(0.0, 0.25, size=n)
        values = np.maximum(np.floor(raw), 1).astype(np.int64)
        null = rng.random(n) < self.s.null_codebase_value_fraction
        zero = rng.random(n) < self.s.zero_value_fraction
        top = int(np.argmin(rank))
        null[top] = zero[top] = False  # some positive maximum always exists
        self.cb_value: list[int | None] = [
            None if null[i] else (0 if zero[i] else int(values[i])) for i in range(n)
        ]
        self.cb_popularity = np.where(null, 1.0, np.maximum(values, 1)).astype(float)
        # Bigger (more popular) packages build a little longer and fail a little more.
        size = np.log(self.cb_popularity)
        self.cb_duration_effect = 0.08 * (size - size.mean()) + rng.normal(0.0, 0.45, size=n)
        self.cb_success_effect = rng.normal(0.0, 0.6, size=n) - 0.03 * (size - size.mean())
        teams = np.array(_TEAMS, dtype=object)[rng.integers(0, len(_TEAMS), size=n)]
        host = rng.random(n)
        branch = rng.random(n) < 0.1
        urls = []
        for i, name in enumerate(self.cb_names):
            if host[i] < 0.9:
                url = f"https://salsa.debian.org/{teams[i]}/{name}.git"
            elif host[i] < 0.97:
                url = f"https://github.com/{name}/{name}"
            else:
                url = f"https://git.launchpad.net/{name}"
            urls.append(url + (",branch=debian/master" if branch[i] else ""))
        self.cb_urls = urls
        # A few codebases never get candidates nor runs.
        self.cb_idle = np.zeros(n, dtype=bool)
        idle = max(1, n // 100) if n >= 4 else 0
        self.cb_idle[rng.choice(n, size=idle, replace=False)] = True
        self.cb_idle[top] = False

    # -- candidates -----------------------------------------------------

    def candidates(self) -> None:
        rng = _stream(self.s.seed, 2)
        total = self.s.candidate_count
        n_cs = round(total * self.s.changeset_candidate_fraction)
        n_twins = n_cs * 3 // 10
        base_total = total - n_twins
        usable = int((~self.cb_idle).sum())
        caps = [usable] * len(self.campaigns)
        counts = _allocate(base_total, [c.weight for c in self.campaigns], caps)
        weights = np.where(self.cb_idle, 0.0, self.cb_popularity**0.25)
        cb_list, camp_list = [], []
        for ci, n_c in enumerate(counts):
            chosen = _weighted_sample(rng, weights, n_c)
            cb_list.append(chosen)
            camp_list.append(np.full(len(chosen), ci, dtype=np.int64))
        cand_cb = np.concatenate(cb_list) if cb_list else np.empty(0, np.int64)
        cand_camp = np.concatenate(camp_list) if camp_list else np.empty(0, np.int64)
        # Ids follow campaign upload batches, shuffled within a campaign, with gaps.
        order = np.lexsort((rng.random(len(cand_cb)), cand_camp))
        cand_cb, cand_camp = cand_cb[order], cand_camp[order]
        m = len(cand_cb)
        # Change sets: twins copy a plain candidate; the others carry a change set alone.
        has_cs = np.zeros(m, dtype=bool)
        twin_of = np.empty(0, dtype=np.int64)
        if n_cs and m:
            picked = rng.choice(m, size=min(n_cs, m), replace=False)
            twin_of = np.sort(picked[:n_twins])
            has_cs[picked[n_twins:]] = True
        self.pair_cb, self.pair_camp = cand_cb, cand_camp  # pairs with a candidate
        rows = np.concatenate([np.arange(m), twin_of])  # candidate row → pair
        cs_flag = np.concatenate([has_cs, np.ones(len(twin_of), dtype=bool)])
        # Twins sit right after their sibling in id order.
        row_order = np.lexsort((cs_flag, rows))
        rows, cs_flag = rows[row_order], cs_flag[row_order]
        gaps = 1 + (rng.random(len(rows)) < 0.04) * rng.integers(1, 6, size=len(rows))
        self.cand_ids = np.cumsum(gaps)
        self.cand_pair = rows
        self.cand_cs = cs_flag
        cs_names = rng.integers(0, 16**8, size=len(rows))
        self.cand_cs_name = [
            f"cs-{int(cs_names[i]):08x}" if cs_flag[i] else None for i in range(len(rows))
        ]

    # -- latent model ---------------------------------------------------

    def latent(self) -> None:
        """Per (codebase, campaign) pair: success logit at as_of, drift, duration."""
        rng = _stream(self.s.seed, 3)
        m = len(self.pair_cb)
        camp = self.pair_camp
        mean = np.array([c.success_logit for c in self.campaigns])[camp]
        spread = np.array([c.success_spread for c in self.campaigns])[camp]
        self.pair_logit_end = (
            mean + self.cb_success_effect[self.pair_cb] + rng.normal(0, 1, m) * spread
        )
        drifts = rng.random(m) < self.s.drift_fraction
        sign = np.where(rng.random(m) < 0.5, -1.0, 1.0)
        self.pair_drifts = drifts
        #: logit(as_of - history) - logit(as_of)
        self.pair_logit_delta = np.where(drifts, sign * rng.normal(1.6, 0.5, m), 0.0)
        median = np.array([c.median_seconds for c in self.campaigns])[camp]
        self.pair_sigma = np.array([c.sigma for c in self.campaigns])[camp]
        self.pair_mu_end = (
            np.log(median) + self.cb_duration_effect[self.pair_cb] + rng.normal(0, 0.2, m)
        )
        self.pair_mu_delta = np.where(drifts, rng.normal(0.0, 0.35, m), 0.0)
        self.pair_transient = np.array([c.transient_rate for c in self.campaigns])[camp]

    # -- runs -----------------------------------------------------------

    def _orphan_pairs(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(codebase, campaign) pairs with runs but no candidate: former candidates."""
        eligible = np.flatnonzero(~self.cb_idle)
        k = round(len(eligible) * self.s.orphan_run_codebase_fraction)
        if k == 0 or self.s.runs_per_candidate == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        cbs = rng.choice(eligible, size=k, replace=False)
        camps = rng.integers(0, len(self.campaigns), size=k)
        existing = set(zip(self.pair_cb.tolist(), self.pair_camp.tolist(), strict=True))
        no_runs = self._no_run_campaign()
        keep_cb, keep_camp = [], []
        for cb, ci in zip(cbs.tolist(), camps.tolist(), strict=True):
            for shift in range(len(self.campaigns)):
                c = (ci + shift) % len(self.campaigns)
                if (cb, c) not in existing and c != no_runs:
                    keep_cb.append(cb)
                    keep_camp.append(c)
                    break
        return np.array(keep_cb, dtype=np.int64), np.array(keep_camp, dtype=np.int64)

    def _no_run_campaign(self) -> int | None:
        names = [c.name for c in self.campaigns]
        if CAMPAIGN_WITHOUT_RUNS in names:
            return names.index(CAMPAIGN_WITHOUT_RUNS)
        return None

    def runs(self) -> None:
        rng = _stream(self.s.seed, 4)
        m = len(self.pair_cb)
        orphan_cb, orphan_camp = self._orphan_pairs(rng)
        n_orphan = len(orphan_cb)
        # Orphan pairs get latent parameters from their campaign and codebase too.
        camp_all = np.concatenate([self.pair_camp, orphan_camp])
        cb_all = np.concatenate([self.pair_cb, orphan_cb])
        specs = self.campaigns
        o_mean = np.array([c.success_logit for c in specs])[orphan_camp]
        logit_end = np.concatenate(
            [self.pair_logit_end, o_mean + self.cb_success_effect[orphan_cb]]
        )
        logit_delta = np.concatenate([self.pair_logit_delta, np.zeros(n_orphan)])
        o_median = np.array([c.median_seconds for c in specs])[orphan_camp]
        mu_end = np.concatenate(
            [self.pair_mu_end, np.log(o_median) + self.cb_duration_effect[orphan_cb]]
        )
        mu_delta = np.concatenate([self.pair_mu_delta, np.zeros(n_orphan)])
        sigma = np.array([c.sigma for c in specs])[camp_all]
        transient = np.array([c.transient_rate for c in specs])[camp_all]

        # How many runs each pair has: zero for some candidates and for the
        # campaign without runs; a heavy-ish tail otherwise; exactly the budget in total.
        total_runs = round(self.s.runs_per_candidate * self.s.candidate_count)
        n_boundary = 3 if self.s.boundary_cases else 0
        n_recent = max(3, total_runs // 500) if total_runs >= 50 else 0
        budget = max(0, total_runs - n_boundary - n_recent)
        has_runs = np.concatenate(
            [rng.random(m) >= self.s.zero_run_fraction, np.ones(n_orphan, dtype=bool)]
        )
        no_runs = self._no_run_campaign()
        if no_runs is not None:
            has_runs &= camp_all != no_runs
        k = np.zeros(len(camp_all), dtype=np.int64)
        if has_runs.any() and budget > 0:
            idx = np.flatnonzero(has_runs)
            weight = np.concatenate([np.ones(m), np.full(n_orphan, 0.25)])[idx]
            mean = budget * weight / weight.sum()
            p = 2.0 / (2.0 + np.maximum(mean - 1.0, 1e-9))
            draws = 1 + rng.negative_binomial(2, p)
            draws = self._fit_budget(rng, draws, budget)
            k[idx] = draws
        if n_boundary + n_recent and not (k > 0).any():
            n_boundary = n_recent = 0
        self.pair_runs = k[:m]
        pair_of_run = np.repeat(np.arange(len(k)), k)
        n = len(pair_of_run)

        # Start times: each pair's runs spread over its own window ending at as_of.
        window = (self.history_us * rng.uniform(0.15, 1.0, size=len(k))).astype(np.int64)
        u = rng.random(n)
        log_mult = np.zeros(n)
        # Outcomes are drawn below; durations need them, start times need durations.
        start = self.as_of_us - (u * window[pair_of_run]).astype(np.int64)
        age = (self.as_of_us - start) / self.history_us  # 0 at as_of, 1 at -history
        logit = logit_end[pair_of_run] + logit_delta[pair_of_run] * age
        p_success = _sigmoid(logit)
        codes, code_idx, flags = self._outcomes(
            rng, camp_all[pair_of_run], p_success, transient[pair_of_run]
        )
        mult = np.array([DURATION_MULTIPLIER.get(c, 0.7) for c in codes])
        log_mult = np.log(mult[code_idx])
        log_dur = mu_end[pair_of_run] + mu_delta[pair_of_run] * age + log_mult
        log_dur += sigma[pair_of_run] * rng.standard_normal(n)
        dur = np.clip(np.exp(log_dur) * US_PER_SECOND, MIN_DURATION_US, MAX_DURATION_US)
        dur = dur.astype(np.int64)
        # A run finishes before as_of: move too-late starts back by their duration.
        late = start + dur > self.as_of_us - US_PER_SECOND
        start = np.where(late, start - dur - US_PER_SECOND, start)
        whole = rng.random(n) < 0.03  # some workers report whole seconds
        start = np.where(whole, start - start % US_PER_SECOND, start)
        fixed = np.zeros(n, dtype=bool)

        # Injected edge cases: recent worker failures, and the three boundary ones.
        extra_pair, extra_start, extra_dur = [], [], []
        with_runs = np.flatnonzero(k[:m] > 0)
        if len(with_runs) == 0:
            with_runs = np.flatnonzero(k > 0)
        if n_recent:
            pick = rng.choice(with_runs, size=n_recent)
            extra_pair.extend(pick.tolist())
            offs = rng.integers(10 * 60 * US_PER_SECOND, 20 * 3600 * US_PER_SECOND, n_recent)
            extra_start.extend((self.as_of_us - offs).tolist())
            extra_dur.extend(
                rng.integers(5 * US_PER_SECOND, 600 * US_PER_SECOND, n_recent).tolist()
            )
        if n_boundary:
            pick = rng.choice(with_runs, size=3, replace=len(with_runs) < 3)
            extra_pair.extend(pick.tolist())
            day = self.as_of_us - US_PER_DAY
            extra_start.extend([day, day - 1, day + 1])
            extra_dur.extend(rng.integers(30 * US_PER_SECOND, 900 * US_PER_SECOND, 3).tolist())
        n_extra = len(extra_pair)
        if n_extra:
            wf = codes.index("worker-failure")
            pair_of_run = np.concatenate([pair_of_run, np.array(extra_pair, dtype=np.int64)])
            start = np.concatenate([start, np.array(extra_start, dtype=np.int64)])
            dur = np.concatenate([dur, np.array(extra_dur, dtype=np.int64)])
            code_idx = np.concatenate([code_idx, np.full(n_extra, wf, dtype=np.int64)])
            # Not transient (NULL or false), so the legacy's one-day rule applies.
            extra_flags = np.where(rng.random(n_extra) < 0.5, -1, 0).astype(np.int8)
            flags = np.concatenate([flags, extra_flags])
            fixed = np.concatenate([fixed, np.zeros(n_recent, bool), np.ones(n_boundary, bool)])
            for pair in extra_pair:
                k[pair] += 1
            self.pair_runs = k[:m]
        start = self._unique_starts(pair_of_run, start, fixed)
        self.run_pair = pair_of_run
        self.run_start = start
        self.run_finish = start + dur
        self.run_code_idx = code_idx
        self.run_flags = flags
        self.codes = codes
        self.pair_all_cb = cb_all
        self.pair_all_camp = camp_all
        self.n_boundary = n_boundary
        self.n_recent = n_recent

    def _fit_budget(self, rng: np.random.Generator, draws: np.ndarray, budget: int) -> np.ndarray:
        """Adjust per-pair run counts (each ≥ 1) so that they sum to ``budget``."""
        draws = draws.astype(np.int64)
        if budget < len(draws):
            # Fewer runs than pairs: only some pairs get one.
            out = np.zeros(len(draws), dtype=np.int64)
            out[rng.choice(len(draws), size=budget, replace=False)] = 1
            return out
        diff = budget - int(draws.sum())
        while diff != 0:
            if diff > 0:
                np.add.at(draws, rng.integers(0, len(draws), size=diff), 1)
                diff = 0
            else:
                over = np.flatnonzero(draws > 1)
                take = rng.choice(over, size=min(-diff, len(over)), replace=False)
                draws[take] -= 1
                diff = budget - int(draws.sum())
        return draws

    def _outcomes(
        self,
        rng: np.random.Generator,
        camp: np.ndarray,
        p_success: np.ndarray,
        transient: np.ndarray,
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Result code index and failure_transient flag (1 true, 0 false, -1 NULL) per run."""
        codes: list[str] = ["success", "worker-failure"]
        index = {c: i for i, c in enumerate(codes)}

        def code_id(name: str) -> int:
            if name not in index:
                index[name] = len(codes)
                codes.append(name)
            return index[name]

        n = len(camp)
        code_idx = np.zeros(n, dtype=np.int64)
        flags = np.full(n, -1, dtype=np.int8)
        u_kind, u_code, u_flag = rng.random(n), rng.random(n), rng.random(n)
        is_transient = u_kind < transient
        is_success = ~is_transient & (rng.random(n) < p_success)
        t_ids = np.array([code_id(c) for c, _ in TRANSIENT_CODES])
        t_cum = np.cumsum([w for _, w in TRANSIENT_CODES])
        pick = np.searchsorted(t_cum / t_cum[-1], u_code[is_transient], side="right")
        code_idx[is_transient] = t_ids[np.minimum(pick, len(t_ids) - 1)]
        flags[is_transient] = 1
        code_idx[is_success] = index["success"]
        flags[is_success] = np.where(u_flag[is_success] < 0.3, 0, -1)
        failing = ~is_transient & ~is_success
        for ci, spec in enumerate(self.campaigns):
            mask = failing & (camp == ci)
            if not mask.any():
                continue
            ids = np.array([code_id(c) for c, _ in spec.failure_mix])
            cum = np.cumsum([w for _, w in spec.failure_mix])
            pick = np.searchsorted(cum / cum[-1], u_code[mask], side="right")
            code_idx[mask] = ids[np.minimum(pick, len(ids) - 1)]
        flags[failing] = np.where(u_flag[failing] < 0.55, 0, -1)
        return codes, code_idx, flags

    def _unique_starts(self, pair: np.ndarray, start: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """Make start times distinct within each (codebase, campaign), moving unfixed runs."""
        start = start.copy()
        for _ in range(1000):
            order = np.lexsort((~fixed, start, pair))  # fixed runs first among equals
            s, p = start[order], pair[order]
            dup = np.flatnonzero((s[1:] == s[:-1]) & (p[1:] == p[:-1])) + 1
            if len(dup) == 0:
                return start
            movers = order[dup]
            if fixed[movers].any():
                raise AssertionError("two fixed runs share a start time")
            start[movers] -= 1
        raise AssertionError("could not make start times unique")

    # -- contexts and details -------------------------------------------

    def contexts(self) -> None:
        rng = _stream(self.s.seed, 5)
        m = len(self.pair_cb)
        kinds = [self.campaigns[c].context_kind for c in self.pair_camp.tolist()]
        current: list[str | None] = []
        previous: list[str | None] = []
        tags = np.array(LINTIAN_TAGS, dtype=object)
        hints = np.array(MULTIARCH_HINTS, dtype=object)
        versions = _version(rng, 2 * m) if m else []
        r = rng.random((m, 4))
        ints = rng.integers(0, 1 << 30, size=(m, 4))
        for i, kind in enumerate(kinds):
            if kind == "lintian":
                now_tags = sorted(set(tags[ints[i, : 1 + int(r[i, 0] * 3)] % len(tags)]))
                old_tags = sorted(set(tags[ints[i, 1:3] % len(tags)]))
                current.append(" ".join(now_tags))
                previous.append(" ".join(old_tags))
            elif kind == "multiarch":
                now_hints = sorted(set(hints[ints[i, : 1 + int(r[i, 0] * 2)] % len(hints)]))
                current.append(" ".join(now_hints))
                previous.append(" ".join(sorted(set(hints[ints[i, 2:4] % len(hints)]))))
            elif kind in ("upstream", "snapshot"):
                new_up = versions[2 * i].split(":")[-1].rsplit("-", 1)[0]
                old_up = versions[2 * i + 1].split(":")[-1].rsplit("-", 1)[0]
                if kind == "snapshot":
                    day = 20230101 + int(ints[i, 0] % 28) + 100 * int(ints[i, 1] % 12)
                    new_up = f"{new_up}+git{day}.{int(ints[i, 2]) & 0xFFFFFFF:07x}"
                    old_up = f"{old_up}+git{day - 10000}.{int(ints[i, 3]) & 0xFFFFFFF:07x}"
                current.append(new_up)
                previous.append(old_up)
            elif kind == "bug":
                current.append(str(900_000 + int(ints[i, 0] % 180_000)))
                previous.append(str(900_000 + int(ints[i, 1] % 180_000)))
            else:
                current.append(None)
                previous.append(None)
        self.pair_context = current
        self.pair_previous_context = previous

    def run_contexts(self) -> tuple[list[str | None], list[str | None]]:
        """instigated_context and context per run: newer runs more often see today's context."""
        rng = _stream(self.s.seed, 6)
        n = len(self.run_pair)
        m = len(self.pair_cb)
        order = np.lexsort((-self.run_start, self.run_pair))
        rank = np.empty(n, dtype=np.int64)
        sorted_pair = self.run_pair[order]
        first = np.r_[0, np.flatnonzero(sorted_pair[1:] != sorted_pair[:-1]) + 1]
        group_start = np.repeat(first, np.diff(np.r_[first, n]))
        rank[order] = np.arange(n) - group_start
        same = rng.random(n) < 0.6 * 0.55 ** np.minimum(rank, 50)
        cur = np.array([*self.pair_context, *([None] * (len(self.pair_all_cb) - m))], dtype=object)
        old = np.array(
            [*self.pair_previous_context, *([None] * (len(self.pair_all_cb) - m))], dtype=object
        )
        instigated = np.where(same, cur[self.run_pair], old[self.run_pair])
        u = rng.random(n)
        nulls = np.full(n, None, dtype=object)
        observed = np.where(u < 0.75, instigated, np.where(u < 0.9, nulls, cur[self.run_pair]))
        return instigated.tolist(), observed.tolist()

    def relations(self) -> None:
        """The package universe for dependency failures, and all_debian_versions."""
        rng = _stream(self.s.seed, 7)
        n_pkg = max(40, len(self.cb_names) // 2)
        pool = _unique_names(rng, n_pkg)
        decorate = rng.integers(0, 4, size=n_pkg)
        names = [
            (f"{p}-dev", f"python3-{p}", f"lib{p}-dev", p)[int(decorate[i])]
            for i, p in enumerate(pool)
        ]
        self.dep_names = list(dict.fromkeys(names))
        known = rng.random(len(self.dep_names)) < 0.65
        rows: list[DebianVersion] = []
        self.dep_versions: dict[str, list[str]] = {}
        count = rng.integers(1, 4, size=len(self.dep_names))
        versions = _version(rng, int(count.sum()))
        dists = rng.integers(0, len(_DISTRIBUTIONS), size=int(count.sum()))
        at = 0
        for i, name in enumerate(self.dep_names):
            c = int(count[i])
            if known[i]:
                vs = versions[at : at + c]
                self.dep_versions[name] = vs
                for j, v in enumerate(vs):
                    rows.append(DebianVersion(name, v, _DISTRIBUTIONS[int(dists[at + j])]))
            at += c
        rows.sort(key=lambda r: (r.source, r.version, r.distribution or ""))
        self.debian_versions = tuple(rows)

    def failure_details(self) -> list[Any]:
        rng = _stream(self.s.seed, 8)
        n = len(self.run_pair)
        details: list[Any] = [None] * n
        codes = self.codes
        build = codes.index("build-failed") if "build-failed" in codes else -1
        builds = np.flatnonzero(self.run_code_idx == build)
        for i in builds[rng.random(len(builds)) < 0.7].tolist():
            details[i] = {"kind": "build", "detail": None}
        deps_code = "install-deps-unsatisfied-dependencies"
        deps = codes.index(deps_code) if deps_code in codes else -1
        failing = np.flatnonzero(self.run_code_idx == deps).tolist()
        # Scalar draws from numpy cost microseconds each: draw uniforms in bulk.
        uniforms = iter(rng.random(len(failing) * 64 + 64).tolist())
        spare_versions = _version(rng, 512)
        self.strict_ops = 0
        for i in failing:
            shape = next(uniforms)
            if shape < 0.05:
                details[i] = None
            elif shape < 0.1:
                details[i] = {}
            elif shape < 0.16:
                details[i] = {"relations": []}
            else:
                details[i] = {"relations": self._relation_list(uniforms, spare_versions)}
        return details

    def _relation_list(self, u: Iterator[float], spare_versions: Sequence[str]) -> list[Any]:
        """One ``relations`` value: AND of OR-lists of python-debian style relation dicts."""
        names = self.dep_names
        outer = 1 + (next(u) < 0.33) + (next(u) < 0.2)
        full = next(u) < 0.5
        cum_ops = _DEP_OP_CUMULATIVE
        out = []
        for _ in range(outer):
            alts = []
            for _ in range(1 if next(u) < 0.8 else 2):
                name = names[int(next(u) * len(names))]
                version: list[str] | None = None
                if next(u) < 0.55:
                    if next(u) < self.s.strict_op_fraction:
                        op = "<<" if next(u) < 0.5 else ">>"
                        self.strict_ops += 1
                    else:
                        x = next(u)
                        op = next(
                            (o for o, c in zip(_DEP_OPS, cum_ops, strict=True) if x < c), ">="
                        )
                    known = self.dep_versions.get(name)
                    if known and next(u) < 0.7:
                        v = known[int(next(u) * len(known))]
                    else:
                        v = spare_versions[int(next(u) * len(spare_versions))]
                    version = [op, v]
                entry: dict[str, Any]
                if full:
                    entry = {
                        "name": name,
                        "archqual": None,
                        "version": version,
                        "arch": None,
                        "restrictions": None,
                    }
                else:
                    entry = {"name": name, "version": version}
                alts.append(entry)
            out.append(alts)
        return out

    # -- policies -------------------------------------------------------

    def policies(self) -> None:
        rng = _stream(self.s.seed, 9)
        policies: list[NamedPublishPolicy] = []
        self.policy_choices: list[tuple[list[str], np.ndarray]] = []
        self.push_derived: dict[int, str] = {}
        for ci, spec in enumerate(self.campaigns):
            names, weights = [], []
            for p in spec.policies:
                name = f"{spec.name}-{p.suffix}"
                entries = (
                    ()
                    if p.mode is None
                    else tuple(PolicyEntry(role, p.mode, p.frequency_days) for role in spec.roles)
                )
                policies.append(NamedPublishPolicy(name, entries, rate_limit_bucket=None))
                names.append(name)
                weights.append(p.weight)
            w = np.array(weights)
            self.policy_choices.append((names, np.cumsum(w / w.sum())))
            if self.s.push_derived_fraction > 0:
                name = f"{spec.name}-push-derived"
                policies.append(
                    NamedPublishPolicy(
                        name,
                        (
                            PolicyEntry("main", "propose", None),
                            PolicyEntry("debian", "push-derived", None),
                        ),
                    )
                )
                self.push_derived[ci] = name
        del rng
        policies.sort(key=lambda p: p.name)
        self.policy_rows = tuple(policies)

    # -- assembling -----------------------------------------------------

    def candidate_rows(self) -> tuple[Candidate, ...]:
        rng = _stream(self.s.seed, 10)
        n = len(self.cand_pair)
        pair = self.cand_pair
        camp = self.pair_camp[pair]
        u_pol, u_null_pol, u_pd = rng.random(n), rng.random(n), rng.random(n)
        u_val, u_null_val = rng.random(n), rng.random(n)
        u_sc, u_null_sc = rng.normal(0.0, 0.15, n), rng.random(n)
        u_cmd, u_ctx = rng.random(n), rng.random(n)
        p_now = _sigmoid(self.pair_logit_end[pair])
        out = []
        for i in range(n):
            pi = int(pair[i])
            ci = int(camp[i])
            spec = self.campaigns[ci]
            names, probs = self.policy_choices[ci]
            slot = int(np.searchsorted(probs, u_pol[i], side="right"))
            policy: str | None = names[min(slot, len(names) - 1)]
            if ci in self.push_derived and u_pd[i] < self.s.push_derived_fraction:
                policy = self.push_derived[ci]
            if u_null_pol[i] < self.s.null_policy_fraction:
                policy = None
            lo, hi = spec.value_range
            value: int | None = lo + int(u_val[i] * (hi - lo + 1))
            if u_null_val[i] < self.s.null_value_fraction:
                value = None
            chance: float | None = round(float(np.clip(p_now[i] + u_sc[i], 0.01, 0.99)), 6)
            if u_null_sc[i] < self.s.null_success_chance_fraction:
                chance = None
            command = spec.command
            if u_cmd[i] < 0.06:
                command = f"DEB_UPDATE_CHANGELOG=auto {command}"
            elif u_cmd[i] < 0.09 and spec.context_kind == "lintian":
                command = f"{command} --exclude={LINTIAN_TAGS[int(u_ctx[i] * len(LINTIAN_TAGS))]}"
            context = self.pair_context[pi]
            if context is not None and u_ctx[i] < 0.03:
                context = None
            out.append(
                Candidate(
                    id=int(self.cand_ids[i]),
                    codebase=self.cb_names[int(self.pair_cb[pi])],
                    suite=spec.name,
                    command=command,
                    change_set=self.cand_cs_name[i],
                    context=context,
                    value=value,
                    success_chance=chance,
                    publish_policy=policy,
                )
            )
        # A twin is identical to its sibling in every column the legacy reads.
        for i in range(1, n):
            if self.cand_cs[i] and pair[i] == pair[i - 1] and not self.cand_cs[i - 1]:
                sib = out[i - 1]
                out[i] = Candidate(
                    id=out[i].id,
                    codebase=sib.codebase,
                    suite=sib.suite,
                    command=sib.command,
                    change_set=out[i].change_set,
                    context=sib.context,
                    value=sib.value,
                    success_chance=sib.success_chance,
                    publish_policy=sib.publish_policy,
                )
        return tuple(out)

    def row_order(self, candidates: Sequence[Candidate]) -> tuple[CandidateKey, ...]:
        """The legacy query's unordered rows: heap order, i.e. id order with moved blocks.

        Updated rows move to later pages, so a few blocks of consecutive
        candidates come back at the end or in holes earlier on.
        """
        rng = _stream(self.s.seed, 11)
        policies = {p.name for p in self.policy_rows}
        codebases = set(self.cb_names)
        joined = [
            c
            for c in candidates
            if c.publish_policy is not None
            and c.publish_policy in policies
            and c.codebase in codebases
        ]
        n = len(joined)
        position = np.arange(n, dtype=float)
        if n >= 4:
            blocks = max(1, n // 40)
            starts = rng.integers(0, n, size=blocks)
            lengths = rng.integers(1, 25, size=blocks)
            to_end = rng.random(blocks) < 0.6
            targets = np.where(to_end, n + rng.random(blocks) * n, rng.random(blocks) * n)
            for b in range(blocks):
                lo, hi = int(starts[b]), min(n, int(starts[b] + lengths[b]))
                position[lo:hi] = targets[b] + np.arange(hi - lo) * 1e-6
        order = np.argsort(position, kind="stable")
        return tuple(joined[i].key for i in order.tolist())

    def truth(self, candidates: Sequence[Candidate]) -> Truth:
        mean_fail = []
        for spec in self.campaigns:
            w = np.array([wt for _, wt in spec.failure_mix])
            mult = np.array([DURATION_MULTIPLIER.get(c, 0.7) for c, _ in spec.failure_mix])
            mean_fail.append(float((w * mult).sum() / w.sum()))
        rows: dict[CandidateKey, CandidateTruth] = {}
        for i, cand in enumerate(candidates):
            pi = int(self.cand_pair[i])
            ci = int(self.pair_camp[pi])
            logit = float(self.pair_logit_end[pi])
            p_end = 1.0 / (1.0 + math.exp(-logit))
            p_start = 1.0 / (1.0 + math.exp(-(logit + float(self.pair_logit_delta[pi]))))
            mu, sigma = float(self.pair_mu_end[pi]), float(self.pair_sigma[pi])
            scale = p_end + (1.0 - p_end) * mean_fail[ci]
            expected = math.exp(mu + sigma * sigma / 2.0) * scale
            rows[cand.key] = CandidateTruth(
                key=cand.key,
                success_probability=p_end,
                success_probability_start=p_start,
                drifts=bool(self.pair_drifts[pi]),
                expected_duration_us=min(round(expected * US_PER_SECOND), MAX_DURATION_US),
                duration_log_mu=mu,
                duration_log_sigma=sigma,
                transient_failure_rate=float(self.pair_transient[pi]),
                runs=int(self.pair_runs[pi]),
            )
        return Truth(as_of=self.s.as_of, settings=self.s.to_json(), candidates=rows)

    def run_rows(self) -> tuple[Run, ...]:
        rng = _stream(self.s.seed, 12)
        n = len(self.run_pair)
        # Heap order of the run table: roughly when the runs were inserted.
        order = np.argsort(self.run_finish, kind="stable")
        for name in ("run_pair", "run_start", "run_finish", "run_code_idx", "run_flags"):
            setattr(self, name, getattr(self, name)[order])
        instigated, observed = self.run_contexts()
        details = self.failure_details()
        raw = rng.bytes(16 * n).hex()
        ids = [
            f"{raw[j : j + 8]}-{raw[j + 8 : j + 12]}-4{raw[j + 13 : j + 16]}-{raw[j + 16 : j + 20]}-{raw[j + 20 : j + 32]}"
            for j in range(0, 32 * n, 32)
        ]
        if len(set(ids)) != n:  # 122 random bits: never in practice, but ids are keys
            seen: set[str] = set()
            for i, ident in enumerate(ids):
                if ident in seen:
                    ids[i] = f"{ident[:-8]}{i:08x}"
                seen.add(ids[i])
        cb_names = np.array(self.cb_names, dtype=object)
        camp_names = np.array([c.name for c in self.campaigns], dtype=object)
        codebase = cb_names[self.pair_all_cb[self.run_pair]].tolist()
        suite = camp_names[self.pair_all_camp[self.run_pair]].tolist()
        code = np.array(self.codes, dtype=object)[self.run_code_idx].tolist()
        flag = np.array([None, False, True], dtype=object)[
            self.run_flags.astype(np.int64) + 1
        ].tolist()
        start, finish = self.run_start.tolist(), self.run_finish.tolist()
        return tuple(
            map(Run, ids, codebase, suite, code, start, finish, flag, instigated, observed, details)
        )

    def build(self) -> GeneratedScenario:
        self.codebases()
        self.candidates()
        self.latent()
        self.runs()
        self.contexts()
        self.relations()
        self.policies()
        candidates = self.candidate_rows()
        runs = self.run_rows()
        codebases = tuple(
            sorted(
                (
                    Codebase(name, self.cb_urls[i], self.cb_value[i])
                    for i, name in enumerate(self.cb_names)
                ),
                key=lambda c: c.name,
            )
        )
        row_order = self.row_order(candidates)
        dataset = Dataset(
            as_of=self.s.as_of,
            codebases=codebases,
            candidates=candidates,
            policies=self.policy_rows,
            runs=runs,
            debian_versions=self.debian_versions,
            queue=(),
            candidate_row_order=row_order,
            provenance=Provenance(
                source="janitor-shadow generate",
                recorded_at=None,
                filters={},
                details={"generator": self.s.to_json()},
            ),
        )
        stats = {
            "codebases": len(codebases),
            "candidates": len(candidates),
            "joined_candidates": len(row_order),
            "runs": len(runs),
            "policies": len(self.policy_rows),
            "debian_versions": len(self.debian_versions),
            "boundary_worker_failures": self.n_boundary,
            "recent_worker_failures": self.n_recent,
            "strict_operator_constraints": self.strict_ops,
            "change_set_candidates": sum(c.change_set is not None for c in candidates),
            "drifting_candidates": int(self.pair_drifts[self.cand_pair].sum()),
        }
        return GeneratedScenario(dataset, self.truth(candidates), self.s, stats)


# ---------------------------------------------------------------- truth files


def write_truth(truth: Truth, path: str | os.PathLike[str]) -> Path:
    """Write ``truth`` as gzipped JSON Lines: a header line, then one line per candidate."""
    target = Path(path)
    header = {
        "format": TRUTH_FORMAT,
        "version": 1,
        "as_of": truth.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "settings": dict(truth.settings),
    }
    with (
        atomic_file(target) as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as sink,
    ):
        sink.write(orjson.dumps(header, option=orjson.OPT_SORT_KEYS) + b"\n")
        chunk = [orjson.dumps(t.to_json()) + b"\n" for t in truth.candidates.values()]
        sink.write(b"".join(chunk))
    return target


def truth_path_for(path: str | os.PathLike[str]) -> Path:
    """Where the truth of a snapshot directory or YAML scenario lives."""
    p = Path(path)
    if p.is_dir():
        return p / TRUTH_FILE
    if p.suffix in (".yaml", ".yml"):
        return p.with_name(p.stem + "." + TRUTH_FILE)
    return p


def _truth_lines(file: Path) -> Iterator[tuple[int, Any]]:
    try:
        with gzip.open(file, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    yield number, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON: {exc}", file=str(file), record=number) from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(file)) from exc


def load_truth(path: str | os.PathLike[str]) -> Truth:
    """Read the truth of a generated scenario (its directory, YAML file or truth file)."""
    file = truth_path_for(path)
    if not file.exists():
        raise InputError("no generator truth here (expected " + TRUTH_FILE + ")", file=str(file))
    lines = _truth_lines(file)
    first = next(lines, None)
    if first is None or not isinstance(first[1], dict) or first[1].get("format") != TRUTH_FORMAT:
        raise InputError(f"not a {TRUTH_FORMAT} file", file=str(file), record=1)
    header = first[1]
    try:
        as_of = datetime.fromisoformat(header["as_of"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("expected a timestamp", file=str(file), record=1, field="as_of") from exc
    rows: dict[CandidateKey, CandidateTruth] = {}
    for number, data in lines:
        current = "codebase"
        try:
            key = CandidateKey(str(data["codebase"]), str(data["campaign"]), data["change_set"])
            current = "success_probability"
            rows[key] = CandidateTruth(
                key=key,
                success_probability=float(data["success_probability"]),
                success_probability_start=float(data["success_probability_start"]),
                drifts=bool(data["drifts"]),
                expected_duration_us=int(data["expected_duration_us"]),
                duration_log_mu=float(data["duration_log_mu"]),
                duration_log_sigma=float(data["duration_log_sigma"]),
                transient_failure_rate=float(data["transient_failure_rate"]),
                runs=int(data["runs"]),
            )
        except KeyError as exc:
            raise InputError(
                "missing", file=str(file), record=number, field=str(exc.args[0])
            ) from exc
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"bad value: {exc}", file=str(file), record=number, field=current
            ) from exc
    return Truth(as_of=as_of, settings=header.get("settings") or {}, candidates=rows)
