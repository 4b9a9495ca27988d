"""Thresholds for a stated false-alert rate and a watchlist's size, from the impostor cohort.

A deployment states the false-positive identification rate it may accept (FPIR: the share of
passers-by not on the list who raise an alert), never a score. A passer-by raises an alert
when their best score over the list's N entries reaches the threshold t, so with per-pair
impostor rate p(t)

    FPIR(t, N) = 1 - (1 - p(t)) ** N

and the threshold for a target rate solves p(t) = 1 - (1 - FPIR) ** (1 / N). A longer list
needs a higher threshold for the same rate. p(t) is read from the fused scores of every
impostor pair of the cohort: empirically where the cohort has enough pairs above t, and from
a generalised Pareto tail fitted to the top TAIL_FRACTION of pairs below that, which reaches
rates far below what the cohort could show by counting. Two corrections keep the promise
honest. The cohort's people are a sample: resampling them shows how far p(t) may be off, and
the target is divided by the ratio of the upper (UPPER_QUANTILE) to the central estimate, so
a threshold errs towards fewer false alerts. And a rate the tail cannot support (more than
EXTRAPOLATION_LIMIT times below one pair in the cohort) is refused with the reason.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.stats import genpareto

from cluster.matching.cohort import PairScores
from cluster.matching.fusion import ScoreFusion

TAIL_FRACTION = 1e-3
"""Share of impostor pairs, the highest, that the Pareto tail is fitted to."""
EXTRAPOLATION_LIMIT = 1000.0
"""How far below one cohort pair (1 / pairs) a per-pair rate may be extrapolated."""
UPPER_QUANTILE = 0.9
"""Which quantile of the people-resampled per-pair rate the threshold guards against."""
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 20261206
SAFETY_PROBE_RATES = (1e-3, 3e-4, 1e-4)
"""Per-pair rates at which the resampling spread is measured (where the cohort resolves them)."""
MAX_SAFETY_FACTOR = 4.0
MAX_TARGET_FPIR = 0.5


class CalibrationRefused(ValueError):
    """A stated false-alert rate the cohort cannot support for this list; the message says why and what to do."""


@dataclass(frozen=True)
class CalibratedThreshold:
    """The threshold in force for a list, and what it was computed for.

    threshold: fused score at or above which a candidate alerts.
    per_pair_rate: impostor rate per list entry the threshold was set to (after the safety factor).
    expected_tpir: share of the cohort's same-person pairs at or above the threshold: the rate
        at which a listed person is expected to alert, for photos like the cohort's.
    """

    threshold: float
    target_fpir: float
    list_size: int
    per_pair_rate: float
    expected_tpir: float
    fusion: str
    cohort_digest: str

    def summary(self) -> str:
        """One line for people: the threshold, what it holds, and what it is expected to find."""
        return (
            f"threshold {self.threshold:.3f} on the fused score ({self.fusion}), calibrated for FPIR"
            f" {self.target_fpir:.2g} (1 in {1 / self.target_fpir:,.0f} passers-by) with {self.list_size} entries;"
            f" expected TPIR {self.expected_tpir:.2f}"
        )

    def record(self) -> dict[str, float | int | str]:
        """The calibration as audit entries and reports store it."""
        return {
            "threshold": round(self.threshold, 6),
            "target_fpir": self.target_fpir,
            "list_size": self.list_size,
            "per_pair_rate": self.per_pair_rate,
            "expected_tpir": round(self.expected_tpir, 4),
            "fusion": self.fusion,
            "cohort_digest": self.cohort_digest,
        }


@dataclass(frozen=True, eq=False)
class ThresholdCalibration:
    """Per-pair impostor tail of fused scores on a cohort, and the thresholds it implies."""

    impostor: np.ndarray
    genuine: np.ndarray
    safety_factor: float
    fusion: ScoreFusion
    cohort_digest: str

    @classmethod
    def fit(cls, pairs: PairScores, fusion: ScoreFusion, cohort_digest: str) -> "ThresholdCalibration":
        """Fuse the cohort's pair cosines, sort them, and measure the people-resampling spread."""
        impostor = np.sort(fusion.fuse(pairs.impostor))
        genuine = np.sort(fusion.fuse(pairs.genuine))
        if len(impostor) * TAIL_FRACTION < 50:
            raise CalibrationRefused(
                f"the cohort has {len(impostor)} impostor pairs; at least {int(50 / TAIL_FRACTION)} are needed to fit"
                " the tail: build the cohort from more faces"
            )
        factor = _safety_factor(fusion.fuse(pairs.impostor), pairs.impostor_people, pairs.people)
        return cls(impostor, genuine, factor, fusion, cohort_digest)

    @cached_property
    def _tail(self) -> tuple[float, float, float]:
        """(u, shape, scale) of the generalised Pareto fitted to exceedances over the tail's start u."""
        start = int(np.floor(len(self.impostor) * (1.0 - TAIL_FRACTION)))
        u = float(self.impostor[start - 1])
        exceedances = self.impostor[start:] - u
        shape, _, scale = genpareto.fit(exceedances, floc=0.0)
        return u, float(shape), float(scale)

    @property
    def min_pair_rate(self) -> float:
        return 1.0 / (len(self.impostor) * EXTRAPOLATION_LIMIT)

    def pair_rate(self, threshold: float) -> float:
        """Estimated share of impostor pairs scoring at or above `threshold`."""
        u, shape, scale = self._tail
        if threshold <= u:
            return float(1.0 - np.searchsorted(self.impostor, threshold, side="left") / len(self.impostor))
        return float(TAIL_FRACTION * genpareto.sf(threshold - u, shape, 0.0, scale))

    def fpir(self, threshold: float, list_size: int) -> float:
        """Expected share of passers-by not on a list of `list_size` entries who alert at `threshold`."""
        rate = min(1.0, self.pair_rate(threshold) * self.safety_factor)
        return float(-np.expm1(list_size * np.log1p(-rate))) if rate < 1.0 else 1.0

    def threshold_for(self, target_fpir: float, list_size: int) -> CalibratedThreshold:
        """The threshold that holds `target_fpir` for a list of `list_size` entries; CalibrationRefused if none can."""
        if not 0.0 < target_fpir <= MAX_TARGET_FPIR:
            raise CalibrationRefused(
                f"target FPIR {target_fpir:g} is not a rate in (0, {MAX_TARGET_FPIR}]; state the share of passers-by"
                " not on the list who may raise an alert, such as 1/6000"
            )
        if list_size < 1:
            raise CalibrationRefused("the list has no entries to search; enrol before freezing")
        per_pair = -np.expm1(np.log1p(-target_fpir) / list_size) / self.safety_factor
        if per_pair < self.min_pair_rate:
            largest = int(np.log1p(-target_fpir) / np.log1p(-self.min_pair_rate * self.safety_factor))
            raise CalibrationRefused(
                f"a list of {list_size} entries at FPIR {target_fpir:g} needs a per-pair impostor rate of"
                f" {per_pair:.1e}, below the {self.min_pair_rate:.1e} that the impostor cohort"
                f" ({len(self.impostor)} pairs) supports; state a higher rate, split the list (at most about"
                f" {largest} entries at this rate), or calibrate with a larger cohort"
            )
        threshold = self._score_at_rate(float(per_pair))
        expected = float(1.0 - np.searchsorted(self.genuine, threshold, side="left") / len(self.genuine))
        return CalibratedThreshold(
            threshold=threshold,
            target_fpir=target_fpir,
            list_size=list_size,
            per_pair_rate=float(per_pair),
            expected_tpir=expected,
            fusion=self.fusion.describe(),
            cohort_digest=self.cohort_digest,
        )

    def _score_at_rate(self, rate: float) -> float:
        """The lowest score whose estimated pair rate does not exceed `rate`."""
        u, shape, scale = self._tail
        if rate >= TAIL_FRACTION:
            kept = int(np.floor(rate * len(self.impostor)))
            return float(np.nextafter(self.impostor[len(self.impostor) - kept - 1], np.inf))
        return float(u + genpareto.isf(rate / TAIL_FRACTION, shape, 0.0, scale))


def _safety_factor(impostor: np.ndarray, people: tuple[np.ndarray, np.ndarray], count: int) -> float:
    """Upper over central per-pair rate when the cohort's people are resampled (median over probe rates)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    ordered = np.sort(impostor)
    first, second = people
    ratios = []
    for rate in SAFETY_PROBE_RATES:
        if rate * len(ordered) < 20:
            continue
        threshold = ordered[len(ordered) - int(rate * len(ordered))]
        above = impostor >= threshold
        central = above.mean()
        rates = np.empty(BOOTSTRAP_ROUNDS)
        for round_ in range(BOOTSTRAP_ROUNDS):
            weights = rng.multinomial(count, np.full(count, 1.0 / count)).astype(np.float64)
            pair_weights = weights[first] * weights[second]
            rates[round_] = (pair_weights * above).sum() / max(pair_weights.sum(), 1.0)
        ratios.append(np.quantile(rates, UPPER_QUANTILE) / central)
    if not ratios:
        return 1.0
    return float(np.clip(np.median(ratios), 1.0, MAX_SAFETY_FACTOR))
