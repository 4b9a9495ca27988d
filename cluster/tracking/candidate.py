"""What a watchlist search returns for one tracklet, and the protocol of the searcher.

`Candidate` is the gallery's answer type: the Milvus gallery returns these, ranked, and the
tracker only ever sees them. Searching is batched: one call for all tracklets that became
ready in a frame.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

COSINE_ROUNDING = 1e-4
"""How far past +-1 a float32 cosine may stray by rounding before it counts as bad input."""


@dataclass(frozen=True)
class Candidate:
    """A watchlist entry close to a tracklet's pooled embedding.

    similarity: the match score the threshold applies to (the fused score of every model, or
    the primary cosine when only it is in use); model_scores: each model's cosine by name.
    """

    person_id: str
    watchlist_id: str
    similarity: float
    model_scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.person_id or not self.watchlist_id:
            raise ValueError(
                f"Candidate needs a person_id and a watchlist_id, got {self.person_id!r}, {self.watchlist_id!r}"
            )
        if not math.isfinite(self.similarity):
            raise ValueError(
                f"Candidate {self.person_id}: similarity must be a finite match score, got {self.similarity}"
            )
        clamped = {}
        for model, cosine in self.model_scores.items():
            if not math.isfinite(cosine) or abs(cosine) > 1.0 + COSINE_ROUNDING:
                raise ValueError(f"Candidate {self.person_id}: {model} cosine must be in -1..1, got {cosine}")
            clamped[model] = float(min(1.0, max(-1.0, cosine)))
        object.__setattr__(self, "model_scores", clamped)


class WatchlistMatcher(Protocol):
    """Searches the watchlist: for each row of `embeddings` (n, 128), its candidates, best first.

    extra: second-stage model name -> (n, d) embeddings of the same tracklets, fused into the score.
    """

    def match(self, embeddings: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> list[list[Candidate]]: ...


def best_candidate(candidates: Sequence[Candidate], threshold: float) -> Candidate | None:
    """The most similar candidate at or above `threshold`, or None: the tracklet matched nobody."""
    best = max(candidates, key=lambda c: c.similarity, default=None)
    if best is None or best.similarity < threshold:
        return None
    return best
