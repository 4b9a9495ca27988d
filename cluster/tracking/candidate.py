"""What a watchlist search returns for one tracklet, and the protocol of the searcher.

`Candidate` is the gallery's answer type: the Milvus gallery returns these, ranked, and the
tracker only ever sees them. Searching is batched: one call for all tracklets that became
ready in a frame.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

COSINE_ROUNDING = 1e-4
"""How far past +-1 a float32 cosine may stray by rounding before it counts as bad input."""


@dataclass(frozen=True)
class Candidate:
    """A watchlist entry close to a tracklet's pooled embedding; `similarity` is their cosine."""

    person_id: str
    watchlist_id: str
    similarity: float

    def __post_init__(self) -> None:
        if not self.person_id or not self.watchlist_id:
            raise ValueError(
                f"Candidate needs a person_id and a watchlist_id, got {self.person_id!r}, {self.watchlist_id!r}"
            )
        if not math.isfinite(self.similarity) or abs(self.similarity) > 1.0 + COSINE_ROUNDING:
            raise ValueError(f"Candidate {self.person_id}: similarity must be a cosine in -1..1, got {self.similarity}")
        object.__setattr__(self, "similarity", float(min(1.0, max(-1.0, self.similarity))))


class WatchlistMatcher(Protocol):
    """Searches the watchlist: for each row of `embeddings` (n, 128), its candidates, best first."""

    def match(self, embeddings: np.ndarray) -> list[list[Candidate]]: ...


def best_candidate(candidates: Sequence[Candidate], threshold: float) -> Candidate | None:
    """The most similar candidate at or above `threshold`, or None: the tracklet matched nobody."""
    best = max(candidates, key=lambda c: c.similarity, default=None)
    if best is None or best.similarity < threshold:
        return None
    return best
