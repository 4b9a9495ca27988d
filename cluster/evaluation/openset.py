"""Open-set (watchlist) identification figures, NIST FRVT 1:N / NPL conventions, from per-probe outcomes.

A gallery holds enrolled people, possibly several entries each; probes are faces of people on the list
(mated) and of people not on it (non-mated). Scores are "higher is more similar" on any scale (a cosine,
a fused z-score), so nothing here assumes a range.

The score matrix is reduced once, in `ProbeOutcomes.from_scores`, to the little every figure needs per
probe: whether it is mated, its best score over the whole gallery, its mate's score and whether the mate
ranked first. Everything after that sorts and counts those short vectors, so a 1,000-round bootstrap over
thousands of probes takes a fraction of a second and no big matrix outlives the constructor.

For a threshold t (a probe raises an alarm when its best score >= t):
- FPIR(t): share of non-mated probes whose best score over the gallery >= t.
- TPIR(t) = 1 - FNIR(t): share of mated probes whose top-ranked person is their own AND whose score >= t.
  A mate that clears t but is outranked by someone else is a miss: the alarm would name the wrong person.
- rank-1: share of mated probes whose top-ranked person is their own, at no threshold.
- A probe's score for a person is its maximum over that person's entries.
- A mate tied with another person for the top score is not rank 1: the system cannot tell them apart.
- A probe where no usable face was found (a failure to acquire) has a best score of -inf: as in FRVT, it
  is a miss when mated and no alarm when non-mated, and it stays in every denominator.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from statistics import NormalDist
from typing import Literal

import numpy as np

Resample = Literal["cluster", "probe"]
RESAMPLE_UNITS: tuple[Resample, ...] = ("cluster", "probe")

CONFIDENCE = 0.95
# floor(fpir * n) must not lose a false alarm to rounding (0.29 * 100 is 28.999999999999996 in binary).
_COUNT_SLACK = 1e-9
# Bootstrap rounds are processed in batches of at most this many (round x probe) weights, bounding memory.
_CELLS_PER_BATCH = 4_000_000


def _labels(name: str, labels: Sequence[object] | np.ndarray, expected: int, per: str) -> np.ndarray:
    """Labels as a 1-D str array, one per `per`; any hashable label works as long as both sides agree."""
    array = np.asarray(labels)
    if array.shape != (expected,):
        raise ValueError(f"{name}: expected {expected} labels (one per {per}), got shape {array.shape}")
    return array.astype(str)


@dataclass(frozen=True, eq=False)
class ProbeOutcomes:
    """What each probe's search came to, in probe order: the one object every figure here reads.

    mated: the probe's person is in the gallery. top_score: best score over the whole gallery (-inf for a
    failure to acquire). mate_score: the probe's score for its own person (NaN for a non-mated probe, -inf
    for a mated failure). top_is_mate: that person ranked strictly first (always False for a non-mated
    probe or a failure). cluster: the unit the bootstrap resamples
    together, by default the probe's person, because one person's photos succeed or fail together.
    The arrays are made read-only so outcomes can be shared between figures without copies.
    """

    mated: np.ndarray
    top_score: np.ndarray
    mate_score: np.ndarray
    top_is_mate: np.ndarray
    cluster: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.mated) != 1:
            raise ValueError(f"ProbeOutcomes.mated: expected shape (n_probes,), got {np.shape(self.mated)}")
        n = len(self.mated)
        dtypes = {"mated": bool, "top_score": np.float64, "mate_score": np.float64, "top_is_mate": bool}
        for field in fields(self):
            value = np.asarray(getattr(self, field.name))
            if value.shape != (n,):
                raise ValueError(f"ProbeOutcomes.{field.name}: expected shape ({n},) like mated, got {value.shape}")
            value = value.astype(dtypes.get(field.name, str))
            value.flags.writeable = False
            object.__setattr__(self, field.name, value)
        if (np.isnan(self.top_score) | (self.top_score == np.inf)).any():
            raise ValueError("ProbeOutcomes.top_score: expected a finite best score, or -inf for a failure to acquire")
        if not np.array_equal(np.isnan(self.mate_score), ~self.mated):
            raise ValueError("ProbeOutcomes.mate_score: expected a finite score per mated probe and NaN per other")
        if (self.top_is_mate & ~self.mated).any():
            raise ValueError("ProbeOutcomes.top_is_mate: a non-mated probe has no mate to rank first")
        if (self.mate_score[self.mated] > self.top_score[self.mated]).any():
            raise ValueError("ProbeOutcomes: a mate_score exceeds its probe's top_score, which is the best over all")
        if (self.top_is_mate & ((self.mate_score != self.top_score) | ~np.isfinite(self.top_score))).any():
            raise ValueError("ProbeOutcomes: a probe whose mate ranked first must have top_score equal to mate_score")

    @classmethod
    def from_scores(
        cls,
        scores: np.ndarray,
        gallery_labels: Sequence[object] | np.ndarray,
        probe_labels: Sequence[object] | np.ndarray,
        clusters: Sequence[object] | np.ndarray | None = None,
        acquired: Sequence[bool] | np.ndarray | None = None,
    ) -> "ProbeOutcomes":
        """Reduce a (n_probes, n_gallery) score matrix to per-probe outcomes.

        gallery_labels names the person of each gallery entry, probe_labels the person in each probe; a
        probe is mated when its person has an entry. clusters (default: probe_labels) groups probes that
        the bootstrap must resample together. acquired (default: all) is False for a probe in which no
        usable face was found: its row of scores is ignored and it becomes a failure to acquire.
        """
        matrix = np.asarray(scores, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"scores: expected a (n_probes, n_gallery) matrix, got shape {matrix.shape}")
        n_probes, n_entries = matrix.shape
        if n_entries == 0:
            raise ValueError("scores: the gallery has no entries; enrol at least one person before evaluating")
        gallery = _labels("gallery_labels", gallery_labels, n_entries, "gallery entry (scores column)")
        probes = _labels("probe_labels", probe_labels, n_probes, "probe (scores row)")
        units = probes if clusters is None else _labels("clusters", clusters, n_probes, "probe (scores row)")
        found = np.ones(n_probes, dtype=bool) if acquired is None else np.asarray(acquired, dtype=bool)
        if found.shape != (n_probes,):
            raise ValueError(
                f"acquired: expected {n_probes} flags (one per probe, scores row), got shape {found.shape}"
            )
        if not found.all():
            matrix = np.where(found[:, None], matrix, 0.0)
        if not np.isfinite(matrix).all():
            probe, entry = np.argwhere(~np.isfinite(matrix))[0]
            raise ValueError(
                f"scores: {np.count_nonzero(~np.isfinite(matrix))} scores are NaN or infinite (the first is probe "
                f"{probe} against gallery entry {entry}); score every acquired probe against every entry, and mark "
                "a probe with no usable face as not acquired"
            )

        people, person_of_entry = np.unique(gallery, return_inverse=True)
        by_person = np.argsort(person_of_entry, kind="stable")
        starts = np.searchsorted(person_of_entry[by_person], np.arange(len(people)))
        person_scores = np.maximum.reduceat(matrix[:, by_person], starts, axis=1)

        mate = np.minimum(np.searchsorted(people, probes), len(people) - 1)
        mated = people[mate] == probes
        rows = np.flatnonzero(mated)
        mate_score = np.full(n_probes, np.nan)
        mate_score[rows] = person_scores[rows, mate[rows]]
        person_scores[rows, mate[rows]] = -np.inf
        best_other = person_scores.max(axis=1, initial=-np.inf)
        top_score = np.where(mated, np.fmax(mate_score, best_other), best_other)
        top_is_mate = np.zeros(n_probes, dtype=bool)
        top_is_mate[rows] = mate_score[rows] > best_other[rows]
        top_score[~found] = -np.inf
        mate_score[~found & mated] = -np.inf
        top_is_mate[~found] = False
        return cls(mated=mated, top_score=top_score, mate_score=mate_score, top_is_mate=top_is_mate, cluster=units)

    def __len__(self) -> int:
        return self.mated.shape[0]

    @property
    def n_mated(self) -> int:
        return int(np.count_nonzero(self.mated))

    @property
    def n_nonmated(self) -> int:
        return len(self) - self.n_mated

    @property
    def n_failed(self) -> int:
        """Probes in which no usable face was found (failures to acquire)."""
        return int(np.count_nonzero(self.top_score == -np.inf))

    @property
    def nonmated_top_scores(self) -> np.ndarray:
        """Best score of each non-mated probe: the score that raises a false alarm (-inf: never)."""
        return self.top_score[~self.mated]

    @property
    def hit_scores(self) -> np.ndarray:
        """Per mated probe, the score at which it becomes a true positive: its mate's score when the mate
        ranked first, else -inf (no threshold makes a wrong-person top hit a true positive)."""
        return np.where(self.top_is_mate, self.top_score, -np.inf)[self.mated]

    @property
    def mate_scores(self) -> np.ndarray:
        """Each mated probe's score for its own person, ranked first or not."""
        return self.mate_score[self.mated]


def _require_nonmated(outcomes: ProbeOutcomes) -> None:
    if outcomes.n_nonmated == 0:
        raise ValueError(
            "FPIR needs non-mated probes (faces of people who are not in the gallery) and there are none; "
            "add probes of people who are not enrolled"
        )


def _require_mated(outcomes: ProbeOutcomes) -> None:
    if outcomes.n_mated == 0:
        raise ValueError(
            "TPIR and rank-1 need mated probes (faces of people who are in the gallery) and there are none; "
            "add probes of enrolled people, taken from photos other than their enrolment photos"
        )


def _check_fpir(fpir: float) -> float:
    if not 0.0 < fpir < 1.0:
        raise ValueError(f"FPIR target {fpir!r} is not a rate strictly between 0 and 1 (for example 0.001)")
    return float(fpir)


def check_fpirs(fpirs: Sequence[float]) -> tuple[float, ...]:
    """The FPIR targets as floats, or a ValueError naming the first that is not a rate in (0, 1)."""
    if len(fpirs) == 0:
        raise ValueError("fpirs: give at least one FPIR target (for example (0.01, 0.001))")
    targets = tuple(_check_fpir(fpir) for fpir in fpirs)
    if len(set(targets)) != len(targets):
        raise ValueError(f"fpirs: each FPIR target once, please; got {targets}")
    return targets


def _allowed_false_alarms(fpir: float, totals: np.ndarray) -> np.ndarray:
    return np.floor(fpir * totals + _COUNT_SLACK)


def _threshold_values(nonmated_desc: np.ndarray, cumulative: np.ndarray, fpir: float) -> np.ndarray:
    """Per row of weights, the score v such that the threshold just above v is the lowest meeting `fpir`.

    nonmated_desc: non-mated best scores, highest first; cumulative: (rounds, n) running totals of each
    probe's weight (its multiplicity in a resample; all ones for the sample itself). At most
    k = floor(fpir * total) weighted false alarms are allowed. The first position whose running total
    exceeds k holds the highest score that must not alarm, so the threshold sits just above it, and
    every probe tied with it is excluded too: ties can only lower the FPIR, never push it over the target.
    """
    allowed = _allowed_false_alarms(fpir, cumulative[:, -1])
    first_over = np.argmax(cumulative > allowed[:, None], axis=1)
    return nonmated_desc[first_over]


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold that meets an FPIR target on these non-mated probes, and what it gives there.

    resolvable is False when the target is below 1 / nonmated: no count of false alarms can show so low a
    rate, so the threshold is set just above the highest non-mated score (observed FPIR 0), and the
    target's true threshold may be higher still.
    """

    fpir_target: float
    threshold: float
    false_alarms: int
    nonmated: int
    resolvable: bool

    @property
    def fpir(self) -> float:
        """The FPIR observed at the threshold (at most the target)."""
        return self.false_alarms / self.nonmated


def threshold_at_fpir(outcomes: ProbeOutcomes, fpir: float) -> OperatingPoint:
    """The lowest threshold whose FPIR does not exceed `fpir` (alarms are scores >= threshold)."""
    target = _check_fpir(fpir)
    _require_nonmated(outcomes)
    nonmated_desc = np.sort(outcomes.nonmated_top_scores)[::-1]
    n = nonmated_desc.shape[0]
    value = _threshold_values(nonmated_desc, np.arange(1, n + 1)[None, :], target)[0]
    threshold = float(np.nextafter(value, np.inf))
    return OperatingPoint(
        fpir_target=target,
        threshold=threshold,
        false_alarms=int(np.count_nonzero(nonmated_desc >= threshold)),
        nonmated=n,
        resolvable=bool(_allowed_false_alarms(target, np.array(n)) >= 1),
    )


def fpir_at_threshold(outcomes: ProbeOutcomes, threshold: float) -> float:
    """Share of non-mated probes whose best score >= threshold."""
    _require_nonmated(outcomes)
    return float(np.mean(outcomes.nonmated_top_scores >= threshold))


def tpir_at_threshold(outcomes: ProbeOutcomes, threshold: float) -> float:
    """Share of mated probes whose top-ranked person is their own with a score >= threshold (1 - FNIR)."""
    _require_mated(outcomes)
    return float(np.mean(outcomes.hit_scores >= threshold))


def rank1(outcomes: ProbeOutcomes) -> float:
    """Share of mated probes whose top-ranked person is their own, at no threshold."""
    _require_mated(outcomes)
    return float(np.mean(outcomes.top_is_mate[outcomes.mated]))


@dataclass(frozen=True, eq=False)
class DetCurve:
    """FNIR against FPIR at every distinct score taken as a threshold, thresholds ascending
    (so FPIR never rises and FNIR never falls along the arrays)."""

    thresholds: np.ndarray
    fpir: np.ndarray
    fnir: np.ndarray


def det_curve(outcomes: ProbeOutcomes) -> DetCurve:
    """The whole trade-off between false alarms and misses, for plotting systems against each other."""
    _require_nonmated(outcomes)
    _require_mated(outcomes)
    nonmated = np.sort(outcomes.nonmated_top_scores)
    hits = np.sort(outcomes.hit_scores)
    scores = np.concatenate([nonmated, hits])
    thresholds = np.unique(scores[np.isfinite(scores)])
    fpir = (nonmated.shape[0] - np.searchsorted(nonmated, thresholds, side="left")) / nonmated.shape[0]
    fnir = np.searchsorted(hits, thresholds, side="left") / hits.shape[0]
    return DetCurve(thresholds=thresholds, fpir=fpir, fnir=fnir)


@dataclass(frozen=True)
class TpirAtFpir:
    """TPIR at the threshold that meets an FPIR target, with a bootstrap percentile interval.

    threshold and tpir are the point estimate on the whole sample; low and high bound the interval, in
    which each resample sets its own threshold for the target (so the interval covers threshold noise too).
    """

    fpir_target: float
    threshold: float
    tpir: float
    low: float
    high: float
    resolvable: bool


@dataclass(frozen=True)
class TpirDifference:
    """TPIR of system a minus system b at the same FPIR target (each at its own threshold for it),
    with a paired bootstrap interval: both systems scored on the very same resamples of probes."""

    fpir_target: float
    tpir_a: float
    tpir_b: float
    difference: float
    low: float
    high: float


def _check_bootstrap(rounds: int, resample: str, confidence: float) -> None:
    if rounds < 1:
        raise ValueError(f"rounds: expected at least 1 bootstrap round (1000 is usual), got {rounds}")
    if resample not in RESAMPLE_UNITS:
        raise ValueError(f"resample: expected one of {', '.join(RESAMPLE_UNITS)}, got {resample!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a level strictly between 0 and 1 (for example 0.95), got {confidence}")


def _units(clusters: np.ndarray, resample: Resample) -> tuple[np.ndarray, int]:
    """Each probe's resampling unit as a code 0..n_units-1: its cluster, or the probe itself."""
    if resample == "probe":
        return np.arange(clusters.shape[0]), clusters.shape[0]
    names, codes = np.unique(clusters, return_inverse=True)
    return codes, names.shape[0]


def _resample_weights(codes: np.ndarray, n_units: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(rounds, n_probes) multiplicities: draw n_units units with replacement per round; every probe of a
    unit drawn m times counts m times."""
    draws = rng.integers(0, n_units, size=(rounds, n_units)) + np.arange(rounds)[:, None] * n_units
    multiplicity = np.bincount(draws.ravel(), minlength=rounds * n_units).reshape(rounds, n_units)
    return multiplicity[:, codes]


def _weighted_tpir(
    nonmated_desc: np.ndarray,
    nonmated_weights: np.ndarray,
    hits_asc: np.ndarray,
    mated_weights: np.ndarray,
    targets: tuple[float, ...],
) -> np.ndarray:
    """(rounds, targets) TPIR of each resample at its own threshold for each FPIR target."""
    nonmated_cumulative = np.cumsum(nonmated_weights, axis=1)
    mated_cumulative = np.cumsum(mated_weights, axis=1)
    mated_total = mated_cumulative[:, -1]
    rows = np.arange(nonmated_weights.shape[0])
    tpir = np.empty((rows.shape[0], len(targets)))
    for column, target in enumerate(targets):
        values = _threshold_values(nonmated_desc, nonmated_cumulative, target)
        # The threshold is just above `value`, so a hit counts when its score is strictly above it.
        not_above = np.searchsorted(hits_asc, values, side="right")
        missed = np.where(not_above > 0, mated_cumulative[rows, np.maximum(not_above - 1, 0)], 0)
        tpir[:, column] = (mated_total - missed) / mated_total
    return tpir


def _bootstrap_tpir(
    systems: Sequence[ProbeOutcomes], targets: tuple[float, ...], rounds: int, seed: int, resample: Resample
) -> list[np.ndarray]:
    """(rounds, targets) resampled TPIRs per system, every system on the same resamples of the same probes.

    Mated and non-mated probes are resampled separately, so each resample keeps the sample's mix.
    """
    probes = systems[0]
    _require_mated(probes)
    _require_nonmated(probes)
    nonmated_codes, nonmated_units = _units(probes.cluster[~probes.mated], resample)
    mated_codes, mated_units = _units(probes.cluster[probes.mated], resample)
    orders = []
    for system in systems:
        nonmated_order = np.argsort(system.nonmated_top_scores, kind="stable")[::-1]
        hit_order = np.argsort(system.hit_scores, kind="stable")
        nonmated_desc, hits_asc = system.nonmated_top_scores[nonmated_order], system.hit_scores[hit_order]
        orders.append((nonmated_order, nonmated_desc, hit_order, hits_asc))
    rng = np.random.default_rng(seed)
    batch = max(1, _CELLS_PER_BATCH // len(probes))
    results = [np.empty((rounds, len(targets))) for _ in systems]
    for start in range(0, rounds, batch):
        size = min(batch, rounds - start)
        nonmated_weights = _resample_weights(nonmated_codes, nonmated_units, size, rng)
        mated_weights = _resample_weights(mated_codes, mated_units, size, rng)
        for result, (nonmated_order, nonmated_desc, hit_order, hits_asc) in zip(results, orders):
            result[start : start + size] = _weighted_tpir(
                nonmated_desc, nonmated_weights[:, nonmated_order], hits_asc, mated_weights[:, hit_order], targets
            )
    return results


def _interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_tpir_at_fpir(
    outcomes: ProbeOutcomes,
    fpirs: Sequence[float],
    rounds: int = 1000,
    seed: int = 0,
    resample: Resample = "cluster",
    confidence: float = CONFIDENCE,
) -> tuple[TpirAtFpir, ...]:
    """TPIR at each FPIR target with a percentile bootstrap interval.

    Mated and non-mated probes are resampled separately with replacement, by cluster (default: a person's
    probes together, since they are correlated and resampling single photos would understate the
    uncertainty) or by single probe.
    """
    targets = check_fpirs(fpirs)
    _check_bootstrap(rounds, resample, confidence)
    points = [threshold_at_fpir(outcomes, target) for target in targets]
    (samples,) = _bootstrap_tpir([outcomes], targets, rounds, seed, resample)
    low, high = _interval(samples, confidence)
    return tuple(
        TpirAtFpir(
            fpir_target=point.fpir_target,
            threshold=point.threshold,
            tpir=tpir_at_threshold(outcomes, point.threshold),
            low=float(low[column]),
            high=float(high[column]),
            resolvable=point.resolvable,
        )
        for column, point in enumerate(points)
    )


def check_same_probes(outcomes_a: ProbeOutcomes, outcomes_b: ProbeOutcomes) -> None:
    """Raise unless both outcomes are of the same probes in the same order, as a paired comparison needs."""
    if len(outcomes_a) != len(outcomes_b):
        raise ValueError(
            f"the systems scored {len(outcomes_a)} and {len(outcomes_b)} probes; "
            "score every system on the same probes, in the same order"
        )
    differ = np.flatnonzero((outcomes_a.mated != outcomes_b.mated) | (outcomes_a.cluster != outcomes_b.cluster))
    if differ.shape[0]:
        raise ValueError(
            f"{differ.shape[0]} probes differ in mated status or cluster between the systems (the first is probe "
            f"{differ[0]}); score every system on the same probes, in the same order"
        )


def paired_bootstrap_difference(
    outcomes_a: ProbeOutcomes,
    outcomes_b: ProbeOutcomes,
    fpirs: Sequence[float],
    rounds: int = 1000,
    seed: int = 0,
    resample: Resample = "cluster",
    confidence: float = CONFIDENCE,
) -> tuple[TpirDifference, ...]:
    """TPIR(a) - TPIR(b) at each FPIR target, with a paired percentile bootstrap interval.

    Both systems are scored on the same resamples, so what the probes have in common (hard faces, easy
    faces) cancels and the interval is far narrower than one built from two separate intervals.
    """
    targets = check_fpirs(fpirs)
    _check_bootstrap(rounds, resample, confidence)
    check_same_probes(outcomes_a, outcomes_b)
    samples_a, samples_b = _bootstrap_tpir([outcomes_a, outcomes_b], targets, rounds, seed, resample)
    low, high = _interval(samples_a - samples_b, confidence)
    differences = []
    for column, target in enumerate(targets):
        tpir_a = tpir_at_threshold(outcomes_a, threshold_at_fpir(outcomes_a, target).threshold)
        tpir_b = tpir_at_threshold(outcomes_b, threshold_at_fpir(outcomes_b, target).threshold)
        differences.append(
            TpirDifference(
                fpir_target=target,
                tpir_a=tpir_a,
                tpir_b=tpir_b,
                difference=tpir_a - tpir_b,
                low=float(low[column]),
                high=float(high[column]),
            )
        )
    return tuple(differences)


@dataclass(frozen=True)
class GroupOutcome:
    """One group's probes at a threshold: counts, and FPIR / TPIR where the group has probes of that kind."""

    group: str
    probes: int
    mated: int
    nonmated: int
    hits: int
    false_alarms: int

    @property
    def fpir(self) -> float | None:
        return self.false_alarms / self.nonmated if self.nonmated else None

    @property
    def tpir(self) -> float | None:
        return self.hits / self.mated if self.mated else None


def group_breakdown(
    outcomes: ProbeOutcomes, groups: Sequence[object] | np.ndarray, threshold: float
) -> tuple[GroupOutcome, ...]:
    """FPIR and TPIR per group (one label per probe) at one threshold, groups in sorted order.

    One threshold for all groups, as a deployment has: differences between groups then show as
    different error rates, which is what a demographic differential is.
    """
    labels = _labels("groups", groups, len(outcomes), "probe")
    alarms = outcomes.top_score >= threshold
    hits = outcomes.top_is_mate & alarms
    false_alarms = ~outcomes.mated & alarms
    rows = []
    for group in np.unique(labels):
        members = labels == group
        mated = int(np.count_nonzero(members & outcomes.mated))
        rows.append(
            GroupOutcome(
                group=str(group),
                probes=int(np.count_nonzero(members)),
                mated=mated,
                nonmated=int(np.count_nonzero(members)) - mated,
                hits=int(np.count_nonzero(members & hits)),
                false_alarms=int(np.count_nonzero(members & false_alarms)),
            )
        )
    return tuple(rows)


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a binomial rate: sensible at 0 or a handful of events, where the normal
    approximation gives a width of zero or a negative bound."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"wilson_interval: expected 0 <= successes <= trials, trials >= 1; got {successes}/{trials}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    rate = successes / trials
    scale = 1.0 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / scale
    half = z * math.sqrt(rate * (1.0 - rate) / trials + z * z / (4 * trials * trials)) / scale
    # At 0 or all events the bound is exactly 0 or 1; rounding would otherwise leave it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class CalibrationCheck:
    """A threshold stated to give some FPIR, against the FPIR observed at it on these non-mated probes.

    low and high: the Wilson interval of the observed FPIR. within_factor_2: the observed rate lies in
    [stated / 2, stated * 2], the tolerance NPL-style calibration checks use. With expected_false_alarms
    well below a handful, neither verdict means much: the sample is too small to test the statement.
    """

    threshold: float
    stated_fpir: float
    false_alarms: int
    nonmated: int
    low: float
    high: float

    @property
    def observed_fpir(self) -> float:
        return self.false_alarms / self.nonmated

    @property
    def expected_false_alarms(self) -> float:
        return self.stated_fpir * self.nonmated

    @property
    def within_factor_2(self) -> bool:
        return self.stated_fpir / 2.0 <= self.observed_fpir <= self.stated_fpir * 2.0


def calibration_check(
    outcomes: ProbeOutcomes, threshold: float, stated_fpir: float, confidence: float = CONFIDENCE
) -> CalibrationCheck:
    """Does `threshold` give the FPIR it was stated (calibrated elsewhere) to give, on these probes?"""
    stated = _check_fpir(stated_fpir)
    _require_nonmated(outcomes)
    false_alarms = int(np.count_nonzero(outcomes.nonmated_top_scores >= threshold))
    low, high = wilson_interval(false_alarms, outcomes.n_nonmated, confidence)
    return CalibrationCheck(
        threshold=float(threshold),
        stated_fpir=stated,
        false_alarms=false_alarms,
        nonmated=outcomes.n_nonmated,
        low=low,
        high=high,
    )


@dataclass(frozen=True, eq=False)
class ScoreHistogram:
    """Counts of mated probes' mate scores and non-mated probes' best scores over shared bin edges: how far
    apart the two populations sit, and how much of each lies past any threshold."""

    edges: np.ndarray
    mated: np.ndarray
    nonmated: np.ndarray


def score_histogram(outcomes: ProbeOutcomes, bins: int = 40) -> ScoreHistogram:
    """Both score populations binned on one set of edges spanning them both (failures to acquire have no
    score to bin: `ProbeOutcomes.n_failed` counts them)."""
    if bins < 1:
        raise ValueError(f"score_histogram: expected at least 1 bin, got {bins}")
    mated, nonmated = outcomes.mate_scores, outcomes.nonmated_top_scores
    mated, nonmated = mated[np.isfinite(mated)], nonmated[np.isfinite(nonmated)]
    edges = np.histogram_bin_edges(np.concatenate([mated, nonmated]), bins=bins)
    return ScoreHistogram(
        edges=edges, mated=np.histogram(mated, bins=edges)[0], nonmated=np.histogram(nonmated, bins=edges)[0]
    )
