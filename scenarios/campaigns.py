"""What the generator knows about the Debian Janitor's campaigns.

Figures come from ``shared/facts/janitor-domain.yaml`` (commands, candidate
values, publish modes, result codes) plus modelling guesses where the facts are
silent (success rates, durations, failure mixes): realistic in shape, not
measured. Kept apart from the generator so the numbers can be read (and
argued with) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How a campaign's candidates describe "the state of the world" (candidate.context).
CONTEXT_KINDS = ("none", "lintian", "multiarch", "upstream", "snapshot", "bug")


@dataclass(frozen=True)
class PolicySpec:
    """One named publish policy of a campaign: the same mode on each role."""

    suffix: str
    mode: str | None  # None: an empty per_branch_policy array
    weight: float
    frequency_days: int | None = None


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    command: str
    #: Relative share of all candidates.
    weight: float
    #: Candidate values are drawn uniformly from this closed range.
    value_range: tuple[int, int]
    context_kind: str
    #: Mean and spread (between candidates) of the latent success rate, on the logit scale.
    success_logit: float
    success_spread: float
    #: Median duration of a successful run, and the lognormal sigma around it.
    median_seconds: float
    sigma: float
    #: Share of runs that fail transiently (failure_transient true).
    transient_rate: float
    #: Non-success, non-transient outcomes and their relative weights.
    failure_mix: tuple[tuple[str, float], ...]
    policies: tuple[PolicySpec, ...]
    roles: tuple[str, ...] = ("main",)


#: Failures that can happen in any Debian build campaign.
_BUILD_FAILURES: tuple[tuple[str, float], ...] = (
    ("build-failed", 10.0),
    ("build-failed-stage-build", 4.0),
    ("install-deps-unsatisfied-dependencies", 7.0),
    ("build-missing-python-module", 1.0),
    ("build-missing-go-package", 0.6),
    ("dist-command-failed", 1.2),
    ("codemod-command-failed", 3.0),
    ("branch-unavailable", 2.5),
    ("worker-failure", 3.0),
    ("quilt-refresh-error", 1.0),
    ("unparseable-changelog", 0.6),
    ("missing-control-file", 1.4),
    ("nothing-new-to-do", 3.0),
    ("run-disappeared", 0.6),
)

#: Transient failures (failure_transient true) and their relative weights.
TRANSIENT_CODES: tuple[tuple[str, float], ...] = (
    ("worker-timeout", 4.0),
    ("worker-failure", 3.0),
    ("502-bad-gateway", 2.0),
    ("result-push-failed", 2.0),
    ("run-disappeared", 1.0),
    ("install-deps-file-fetch-failure", 1.0),
    ("apt-get-update-file-fetch-failure", 1.0),
    ("no-space-on-device", 0.5),
    ("cancelled", 0.5),
)

#: Run duration of an outcome relative to a successful run of the same candidate.
DURATION_MULTIPLIER: dict[str, float] = {
    "success": 1.0,
    "nothing-to-do": 0.25,
    "nothing-new-to-do": 0.3,
    "codemod-command-failed": 0.2,
    "branch-unavailable": 0.05,
    "upstream-branch-unknown": 0.15,
    "no-upstream-releases": 0.1,
    "native-package": 0.1,
    "missing-control-file": 0.05,
    "unparseable-changelog": 0.05,
    "quilt-refresh-error": 0.4,
    "upstream-merged-conflicts": 0.3,
    "install-deps-unsatisfied-dependencies": 0.5,
    "build-failed": 0.8,
    "build-failed-stage-build": 0.9,
    "build-missing-python-module": 0.7,
    "build-missing-go-package": 0.7,
    "dist-command-failed": 0.6,
    "debianize-failed": 0.4,
    "worker-failure": 0.5,
    "run-disappeared": 1.5,
    "worker-timeout": 6.0,
    "502-bad-gateway": 0.05,
    "result-push-failed": 1.0,
    "install-deps-file-fetch-failure": 0.3,
    "apt-get-update-file-fetch-failure": 0.2,
    "no-space-on-device": 0.7,
    "cancelled": 0.3,
}


def _mix(nothing_to_do: float, *extra: tuple[str, float]) -> tuple[tuple[str, float], ...]:
    return (("nothing-to-do", nothing_to_do), *_BUILD_FAILURES, *extra)


def _policies(*modes: tuple[str | None, float]) -> tuple[PolicySpec, ...]:
    return tuple(
        PolicySpec(suffix="none" if mode is None else mode, mode=mode, weight=weight)
        for mode, weight in modes
    )


_UPSTREAM_ROLES = ("main", "upstream", "pristine-tar")

#: In the order ``--campaigns N`` takes them.
CAMPAIGNS: tuple[CampaignSpec, ...] = (
    CampaignSpec(
        name="lintian-fixes",
        command="lintian-brush",
        weight=24.0,
        value_range=(15, 150),
        context_kind="lintian",
        success_logit=-0.8,
        success_spread=1.1,
        median_seconds=240.0,
        sigma=0.55,
        transient_rate=0.05,
        failure_mix=_mix(30.0),
        policies=(
            PolicySpec("propose", "propose", 5.0, frequency_days=None),
            PolicySpec("propose-weekly", "propose", 1.0, frequency_days=7),
            *_policies(("push", 2.0), ("attempt-push", 1.5), ("bts", 0.5), ("build-only", 1.0)),
            *_policies(("skip", 0.3)),
        ),
    ),
    CampaignSpec(
        name="fresh-releases",
        command="deb-new-upstream --refresh-patches",
        weight=14.0,
        value_range=(10, 40),
        context_kind="upstream",
        success_logit=-1.4,
        success_spread=1.0,
        median_seconds=600.0,
        sigma=0.65,
        transient_rate=0.07,
        failure_mix=_mix(
            6.0,
            ("upstream-branch-unknown", 5.0),
            ("no-upstream-releases", 2.0),
            ("native-package", 2.0),
            ("upstream-merged-conflicts", 2.0),
        ),
        policies=_policies(("build-only", 4.0), ("propose", 2.0), ("attempt-push", 1.0)),
        roles=_UPSTREAM_ROLES,
    ),
    CampaignSpec(
        name="fresh-snapshots",
        command="deb-new-upstream --snapshot --refresh-patches",
        weight=12.0,
        value_range=(3, 25),
        context_kind="snapshot",
        success_logit=-1.6,
        success_spread=1.0,
        median_seconds=720.0,
        sigma=0.7,
        transient_rate=0.07,
        failure_mix=_mix(
            4.0,
            ("upstream-branch-unknown", 5.0),
            ("native-package", 2.0),
            ("upstream-merged-conflicts", 3.0),
        ),
        policies=_policies(("build-only", 5.0), ("propose", 1.0), ("skip", 0.5)),
        roles=_UPSTREAM_ROLES,
    ),
    CampaignSpec(
        name="multiarch-fixes",
        command="apply-multiarch-hints",
        weight=6.0,
        value_range=(50, 200),
        context_kind="multiarch",
        success_logit=-0.2,
        success_spread=0.9,
        median_seconds=200.0,
        sigma=0.5,
        transient_rate=0.05,
        failure_mix=_mix(12.0),
        policies=_policies(("propose", 4.0), ("attempt-push", 1.0), ("build-only", 1.0)),
    ),
    CampaignSpec(
        name="unchanged",
        command="true",
        weight=10.0,
        value_range=(1, 1),
        context_kind="none",
        success_logit=0.8,
        success_spread=0.9,
        median_seconds=420.0,
        sigma=0.6,
        transient_rate=0.06,
        failure_mix=_BUILD_FAILURES,
        policies=_policies(("build-only", 1.0)),
    ),
    CampaignSpec(
        name="scrub-obsolete",
        command="deb-scrub-obsolete",
        weight=10.0,
        value_range=(10, 80),
        context_kind="none",
        success_logit=-1.1,
        success_spread=1.0,
        median_seconds=260.0,
        sigma=0.55,
        transient_rate=0.05,
        failure_mix=_mix(25.0),
        policies=_policies(
            ("propose", 4.0), ("attempt-push", 1.0), ("build-only", 1.0), ("skip", 0.3)
        ),
    ),
    CampaignSpec(
        name="control",
        command="brz up",
        weight=8.0,
        value_range=(1, 10),
        context_kind="none",
        success_logit=1.0,
        success_spread=0.8,
        median_seconds=380.0,
        sigma=0.6,
        transient_rate=0.06,
        failure_mix=_BUILD_FAILURES,
        policies=_policies(("build-only", 4.0), (None, 1.0)),
    ),
    CampaignSpec(
        name="uncommitted",
        command="deb-import-uncommitted",
        weight=3.0,
        value_range=(60, 70),
        context_kind="none",
        success_logit=-0.5,
        success_spread=0.9,
        median_seconds=300.0,
        sigma=0.5,
        transient_rate=0.05,
        failure_mix=_mix(8.0),
        policies=_policies(("propose", 2.0), ("build-only", 1.0)),
    ),
    CampaignSpec(
        name="debianize",
        command="debianize --recursive",
        weight=3.0,
        value_range=(25, 120),
        context_kind="none",
        success_logit=-2.0,
        success_spread=1.0,
        median_seconds=900.0,
        sigma=0.8,
        transient_rate=0.06,
        failure_mix=_mix(2.0, ("debianize-failed", 6.0)),
        policies=_policies(("build-only", 3.0), ("skip", 0.5)),
    ),
    CampaignSpec(
        name="orphan",
        command="deb-move-orphaned --no-update-vcs",
        weight=2.0,
        value_range=(38, 102),
        context_kind="bug",
        success_logit=0.0,
        success_spread=0.8,
        median_seconds=150.0,
        sigma=0.5,
        transient_rate=0.05,
        failure_mix=_mix(6.0),
        policies=_policies(("propose", 2.0), ("push", 1.0), ("bts", 1.0)),
    ),
    CampaignSpec(
        name="mia",
        command="drop-mia-uploaders",
        weight=2.0,
        value_range=(10, 90),
        context_kind="bug",
        success_logit=-0.1,
        success_spread=0.8,
        median_seconds=140.0,
        sigma=0.5,
        transient_rate=0.05,
        failure_mix=_mix(6.0),
        policies=_policies(("attempt-push", 2.0), ("propose", 1.0), ("build-only", 0.5)),
    ),
    CampaignSpec(
        name="cme",
        command="cme-fix",
        weight=1.5,
        value_range=(5, 5),
        context_kind="none",
        success_logit=-1.0,
        success_spread=0.8,
        median_seconds=200.0,
        sigma=0.5,
        transient_rate=0.05,
        failure_mix=_mix(10.0),
        policies=_policies(("build-only", 1.0)),
    ),
    CampaignSpec(
        name="upstream-unchanged",
        command="just-build",
        weight=2.0,
        value_range=(25, 25),
        context_kind="none",
        success_logit=0.1,
        success_spread=0.9,
        median_seconds=300.0,
        sigma=0.6,
        transient_rate=0.06,
        failure_mix=_BUILD_FAILURES,
        policies=_policies(("build-only", 1.0)),
    ),
    CampaignSpec(
        name="bullseye-backports",
        command="deb-auto-backport",
        weight=2.0,
        value_range=(10, 40),
        context_kind="upstream",
        success_logit=-0.8,
        success_spread=1.0,
        median_seconds=500.0,
        sigma=0.6,
        transient_rate=0.06,
        failure_mix=_mix(5.0),
        policies=_policies(("build-only", 2.0), ("propose", 1.0)),
    ),
)

#: The campaign that, when selected, has candidates but no runs at all
#: (its per-campaign duration average is then NULL in the legacy).
CAMPAIGN_WITHOUT_RUNS = "cme"

LINTIAN_TAGS = (
    "field-name-typo-in-dep5-copyright",
    "obsolete-field-in-dep5-copyright",
    "homepage-field-uses-insecure-uri",
    "vcs-obsolete-in-debian-infrastructure",
    "package-uses-old-debhelper-compat-version",
    "out-of-date-standards-version",
    "debian-watch-uses-insecure-uri",
    "priority-extra-is-replaced-by-priority-optional",
    "renamed-tag",
    "public-upstream-key-not-minimal",
    "trailing-whitespace",
    "changelog-line-too-long",
    "upstream-metadata-file-is-missing",
    "debian-rules-sets-dpkg-architecture-variable",
    "older-debian-watch-file-standard",
    "uses-debhelper-compat-file",
)

MULTIARCH_HINTS = (
    "file-conflict",
    "ma-foreign",
    "ma-foreign-library",
    "dep-any",
    "ma-same",
    "arch-all",
    "ma-workaround",
)
