"""Does a calibrated threshold hold its stated false-alert rate? Trials on random lists of labelled people.

For each list size N, `draws` random lists of N people are drawn (one random photo each, where a
face was found) from a labelled set that shares nobody with the impostor cohort; every acquired
photo of the people not on that list is a non-mated probe. The threshold the calibration gives
for N entries and the stated rate is applied, and the share of probes whose best fused score
over the list reaches it is the observed FPIR. Draws reuse the same probes against different
lists, so the counts are not independent: the interval is a guide, and the figures say how many
probes and draws they rest on.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cluster.evaluation.openset import wilson_interval
from cluster.evaluation.protocol import LabelledEmbeddings
from cluster.matching.calibration import ThresholdCalibration
from cluster.matching.fusion import ScoreFusion


@dataclass(frozen=True)
class CalibrationTrial:
    """Stated against observed FPIR for one list size and rate, pooled over the draws."""

    list_size: int
    stated_fpir: float
    threshold: float
    draws: int
    searches: int
    distinct_probes: int
    false_alarms: int
    low: float
    high: float

    @property
    def observed_fpir(self) -> float:
        return self.false_alarms / self.searches if self.searches else float("nan")

    @property
    def ratio(self) -> float:
        """Observed over stated FPIR (1 is exact)."""
        return self.observed_fpir / self.stated_fpir

    @property
    def within_factor_2(self) -> bool:
        return 0.5 <= self.ratio <= 2.0

    def record(self) -> dict:
        return {
            "list_size": self.list_size,
            "stated_fpir": self.stated_fpir,
            "threshold": round(self.threshold, 6),
            "draws": self.draws,
            "searches": self.searches,
            "distinct_probes": self.distinct_probes,
            "false_alarms": self.false_alarms,
            "observed_fpir": self.observed_fpir,
            "interval_95": [self.low, self.high],
            "ratio": self.ratio,
            "within_factor_2": self.within_factor_2,
        }


def calibration_trials(
    data: LabelledEmbeddings,
    fusion: ScoreFusion,
    calibration: ThresholdCalibration,
    list_sizes: Sequence[int],
    rates: Sequence[float],
    draws: int = 20,
    seed: int = 0,
) -> list[CalibrationTrial]:
    """One trial per (list size, rate); see the module docstring."""
    acquired = np.flatnonzero(data.acquired)
    people = np.unique(data.people[acquired])
    rng = np.random.default_rng(seed)
    trials = []
    for size in list_sizes:
        if size >= len(people):
            raise ValueError(f"a list of {size} people needs more than the {len(people)} people with a usable face")
        best_scores: list[np.ndarray] = []
        probes_seen: set[int] = set()
        for _ in range(draws):
            listed = rng.choice(people, size, replace=False)
            gallery = np.array([rng.choice(acquired[data.people[acquired] == person]) for person in listed])
            probes = acquired[~np.isin(data.people[acquired], listed)]
            cosines = {model: data.vectors[model][probes] @ data.vectors[model][gallery].T for model in fusion.models}
            best_scores.append(fusion.fuse(cosines).max(axis=1))
            probes_seen.update(probes.tolist())
        pooled = np.concatenate(best_scores)
        for rate in rates:
            threshold = calibration.threshold_for(rate, size).threshold
            alarms = int((pooled >= threshold).sum())
            low, high = wilson_interval(alarms, len(pooled))
            trials.append(
                CalibrationTrial(size, rate, threshold, draws, len(pooled), len(probes_seen), alarms, low, high)
            )
    return trials
