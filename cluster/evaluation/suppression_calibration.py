"""Choosing the "not this person" threshold from genuine and impostor scores.

A suppression that takes a different person for the rejected one hides that person for the rest
of the deployment; the case that matters is a person who matches the same watchlist entry as
the rejected one (the wanted person after a look-alike was rejected, or a second look-alike).
So the impostor pairs measured here are those "attack" pairs: faces of two different people
that both match one third person's face (primary-model cosine at least `match_cosine`, as two
people matching one watchlist photo do), counted once for each such third face. The threshold
is the lowest on a grid at which at most `max_attack_rate` of them would be suppressed; the
genuine pairs (same person, photos from different occasions, harder than one deployment's
repeats) say how many repeats it still suppresses.
"""

import itertools
from dataclasses import dataclass

import numpy as np

GRID_STEP = 0.005


@dataclass(frozen=True)
class SuppressionCalibration:
    """The chosen threshold and the pair counts behind it (`*_above`: pairs at or above the threshold)."""

    threshold: float
    match_cosine: float
    max_attack_rate: float
    attack_pairs: int
    attack_above: int
    impostor_pairs: int
    impostor_above: int
    genuine_pairs: int
    genuine_above: int

    @property
    def attack_rate(self) -> float:
        return self.attack_above / self.attack_pairs

    @property
    def genuine_rate(self) -> float:
        return self.genuine_above / self.genuine_pairs


def calibrate_suppression(
    embeddings: np.ndarray, labels: np.ndarray, match_cosine: float = 0.92, max_attack_rate: float = 5e-4
) -> SuppressionCalibration:
    """The lowest grid threshold whose attack-pair rate is at most `max_attack_rate`; see the module docstring.

    embeddings: (n, d) L2-normalised primary-model embeddings, one face each; labels: each face's person.
    """
    vectors = np.asarray(embeddings, dtype=np.float64)
    people = np.asarray(labels)
    if vectors.ndim != 2 or len(vectors) != len(people) or len(vectors) < 3:
        raise ValueError(f"need (n >= 3, d) embeddings with one label each, got {vectors.shape} and {len(people)}")
    if not 0.0 < max_attack_rate < 1.0:
        raise ValueError(f"max_attack_rate must be within (0, 1), got {max_attack_rate}")
    scores = vectors @ vectors.T
    same = people[:, None] == people[None, :]
    upper = np.triu_indices(len(people), 1)
    genuine = scores[upper][same[upper]]
    impostor = scores[upper][~same[upper]]
    attack = _attack_scores(scores, same, match_cosine)
    if not len(attack) or not len(genuine):
        raise ValueError(
            f"no pairs of people both matching a third at cosine {match_cosine}, or no person with two faces:"
            " use a larger cohort or a lower match_cosine"
        )
    threshold = match_cosine
    while threshold < 1.0 and np.mean(attack >= threshold) > max_attack_rate:
        threshold = round(threshold + GRID_STEP, 6)
    return SuppressionCalibration(
        threshold=threshold,
        match_cosine=match_cosine,
        max_attack_rate=max_attack_rate,
        attack_pairs=len(attack),
        attack_above=int(np.sum(attack >= threshold)),
        impostor_pairs=len(impostor),
        impostor_above=int(np.sum(impostor >= threshold)),
        genuine_pairs=len(genuine),
        genuine_above=int(np.sum(genuine >= threshold)),
    )


def _attack_scores(scores: np.ndarray, same: np.ndarray, match_cosine: float) -> np.ndarray:
    """Cosines of pairs of different people's faces that both match one third person's face, per third face."""
    matches = (scores >= match_cosine) & ~same
    found: list[float] = []
    for third in range(len(scores)):
        for a, b in itertools.combinations(np.flatnonzero(matches[third]), 2):
            if not same[a, b]:
                found.append(float(scores[a, b]))
    return np.asarray(found)
