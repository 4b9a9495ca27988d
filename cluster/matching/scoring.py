"""`MatchScoring`: the fused score and calibrated thresholds for the configured face models.

Built once per process from the impostor cohort (fitting takes about a second), then shared:
the fusion turns each candidate's per-model cosines into one match score, and the calibration
turns a stated false-alert rate and a list's size into the threshold on that score.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cluster.matching.calibration import CalibratedThreshold, ThresholdCalibration
from cluster.matching.cohort import SHIPPED_COHORT, ImpostorCohort
from cluster.matching.fusion import ScoreFusion, fit_fusion


@dataclass(frozen=True, eq=False)
class MatchScoring:
    """Fusion and calibration for one set of models, fitted on one cohort."""

    fusion: ScoreFusion
    calibration: ThresholdCalibration

    @property
    def models(self) -> tuple[str, ...]:
        return self.fusion.models

    def score(self, model_scores: Mapping[str, float]) -> float:
        """The fused match score of one candidate from its per-model cosines."""
        return float(self.fusion.fuse(model_scores))

    def threshold_for(self, target_fpir: float, list_size: int) -> CalibratedThreshold:
        return self.calibration.threshold_for(target_fpir, list_size)


def fit_scoring(cohort: ImpostorCohort, models: tuple[str, ...]) -> MatchScoring:
    """Fit the fusion of `models` and the threshold calibration on the cohort's pairs."""
    pairs = cohort.pair_scores(models)
    fusion = fit_fusion(models, pairs.impostor, pairs.genuine)
    return MatchScoring(fusion, ThresholdCalibration.fit(pairs, fusion, cohort.digest))


@lru_cache(maxsize=4)
def match_scoring(models: tuple[str, ...], cohort_path: Path = SHIPPED_COHORT) -> MatchScoring:
    """The scoring for `models` on the cohort at `cohort_path` (the shipped one by default), cached per process."""
    return fit_scoring(ImpostorCohort.load(cohort_path), models)
