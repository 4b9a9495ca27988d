"""`ScoreFusion`: one match score from the cosines of several face models.

Each model's cosine is standardised by its own impostor distribution (mean and standard
deviation of cosines between different people in the impostor cohort), the standardised
scores are summed with weights, and the sum is standardised again. The fused score is thus
"standard deviations above a typical impostor pair": models with different cosine scales add
up fairly, and a score means the same whichever models made it. The weights are fitted on the
cohort only (`fit_fusion`), never on the people an evaluation reports on.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

WEIGHT_GRID = np.linspace(0.0, 1.0, 21)
"""Weights tried for the second model when fitting two models (the first gets 1 - w)."""
FIT_PAIR_RATE = 1e-4
"""Per-pair impostor rate at which fitting maximises the share of genuine pairs accepted."""
COSINE_SLACK = 1e-4
"""How far float32 rounding may move a cosine (past 1, or across a floor); `lowest_cosine` allows for it."""


@dataclass(frozen=True)
class ModelNormalisation:
    """How one model's cosine enters the fused score."""

    model: str
    impostor_mean: float
    impostor_std: float
    weight: float

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("ModelNormalisation needs the model's name")
        if not (np.isfinite(self.impostor_std) and self.impostor_std > 0):
            raise ValueError(f"{self.model}: impostor_std must be > 0, got {self.impostor_std}")
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"{self.model}: weight must be >= 0, got {self.weight}")


@dataclass(frozen=True)
class ScoreFusion:
    """Weighted sum of impostor-standardised cosines, standardised again by `scale`."""

    parts: tuple[ModelNormalisation, ...]
    scale: float

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("ScoreFusion needs at least one model")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be > 0, got {self.scale}")

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(part.model for part in self.parts)

    def fuse(self, cosines: Mapping[str, np.ndarray | float]) -> np.ndarray:
        """Fused scores for cosines given per model (arrays of one shape); every fused model must be there."""
        missing = [part.model for part in self.parts if part.model not in cosines]
        if missing:
            raise ValueError(
                f"no cosines for {', '.join(missing)}: the fused score needs {', '.join(self.models)};"
                " embed the faces with every configured model"
            )
        total = sum(
            part.weight * (np.asarray(cosines[part.model], dtype=np.float64) - part.impostor_mean) / part.impostor_std
            for part in self.parts
        )
        return np.asarray(total / self.scale, dtype=np.float64)

    def lowest_cosine(self, model: str, threshold: float) -> float:
        """The lowest cosine of `model` with which a fused score can still reach `threshold`.

        Every other model is taken at its best (cosine 1, plus float32 rounding), so a candidate
        below this cosine fails the threshold whatever the other models say: a search may leave
        it out. -1 when `model` has no weight (every cosine may still reach it).
        """
        parts = {part.model: part for part in self.parts}
        if model not in parts:
            raise ValueError(f"{model!r} is not fused here; the fused models are {', '.join(self.models)}")
        own = parts[model]
        best_others = sum(
            part.weight * (1.0 + COSINE_SLACK - part.impostor_mean) / part.impostor_std
            for part in self.parts
            if part.model != model
        )
        if own.weight == 0:
            return -1.0
        needed = (threshold * self.scale - best_others) * own.impostor_std / own.weight + own.impostor_mean
        return max(-1.0, needed - COSINE_SLACK)

    def describe(self) -> str:
        """'0.40 x dlib + 0.60 x faceres (z-scored)', as reports and alerts show it."""
        return " + ".join(f"{part.weight:.2f} x {part.model}" for part in self.parts) + " (impostor z-scores)"


def _standardiser(model: str, impostor: np.ndarray, weight: float) -> ModelNormalisation:
    return ModelNormalisation(model, float(impostor.mean()), float(impostor.std()), weight)


def _genuine_accepted(impostor: np.ndarray, genuine: np.ndarray, pair_rate: float) -> float:
    threshold = np.quantile(impostor, 1.0 - pair_rate)
    return float((genuine > threshold).mean())


def fit_fusion(
    models: Sequence[str], impostor: Mapping[str, np.ndarray], genuine: Mapping[str, np.ndarray]
) -> ScoreFusion:
    """The fusion of `models` fitted on cohort pair cosines (impostor: different people; genuine: same person).

    One model: its z-score. Two: the weight of the second is the grid value that accepts the
    most genuine pairs at a per-pair impostor rate of FIT_PAIR_RATE. More than two: equal weights.
    """
    if not models:
        raise ValueError("fit_fusion needs at least one model")
    for name in models:
        if name not in impostor or name not in genuine:
            raise ValueError(f"no cohort cosines for model {name!r}; rebuild the cohort with it")
        if len(impostor[name]) == 0 or len(genuine[name]) == 0:
            raise ValueError(f"model {name!r}: the cohort needs both impostor and genuine pairs")
    if len(models) == 2:
        first, second = models
        best = max(
            WEIGHT_GRID,
            key=lambda w: _genuine_accepted(
                _z(impostor[first], impostor[first]) * (1 - w) + _z(impostor[second], impostor[second]) * w,
                _z(genuine[first], impostor[first]) * (1 - w) + _z(genuine[second], impostor[second]) * w,
                FIT_PAIR_RATE,
            ),
        )
        weights = [1.0 - float(best), float(best)]
    else:
        weights = [1.0] * len(models)
    parts = tuple(_standardiser(name, impostor[name], weight) for name, weight in zip(models, weights))
    unscaled = ScoreFusion(parts, 1.0).fuse(impostor)
    return ScoreFusion(parts, float(unscaled.std()))


def _z(values: np.ndarray, impostor: np.ndarray) -> np.ndarray:
    return (values - impostor.mean()) / impostor.std()
