"""`ImpostorCohort`: faces of people on no watchlist, from which scores are fused and thresholds calibrated.

The cohort is shipped with the package as embeddings only (one array per face model, with
each face's person label), never as photos. It must be identity-disjoint from every set that
an evaluation reports on: see `cluster/matching/data/README.md` for how the shipped one was
built and which people it holds. `pair_scores` gives the cosines of every pair of cohort
faces, split into impostor pairs (different people, with both people's indices so that
sampling error can be estimated by resampling people) and genuine pairs (same person).
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHIPPED_COHORT = Path(__file__).resolve().parent / "data" / "cohort.npz"
EMBEDDING_PREFIX = "embedding:"


class CohortError(ValueError):
    """A cohort file that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True, eq=False)
class PairScores:
    """Cosines of every cohort pair for each model; impostor pairs carry their two people's indices."""

    impostor: dict[str, np.ndarray]
    impostor_people: tuple[np.ndarray, np.ndarray]
    genuine: dict[str, np.ndarray]
    people: int


@dataclass(frozen=True, eq=False)
class ImpostorCohort:
    """Per-model L2-normalised embeddings of labelled faces; `description` says where they came from."""

    labels: np.ndarray
    embeddings: dict[str, np.ndarray]
    description: str

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(np.unique(self.labels)) < 2:
            raise CohortError("a cohort needs faces of at least two people")
        for model, vectors in self.embeddings.items():
            if vectors.ndim != 2 or len(vectors) != len(self.labels):
                raise CohortError(
                    f"cohort embeddings of {model!r}: expected ({len(self.labels)}, d), got {vectors.shape}"
                )

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.embeddings)

    @property
    def digest(self) -> str:
        """SHA-256 over labels and embeddings: names exactly which cohort a threshold came from."""
        hasher = hashlib.sha256("\n".join(map(str, self.labels)).encode())
        for model in sorted(self.embeddings):
            hasher.update(model.encode())
            hasher.update(np.ascontiguousarray(self.embeddings[model], dtype=np.float32).tobytes())
        return hasher.hexdigest()

    def require(self, models: tuple[str, ...]) -> None:
        missing = [model for model in models if model not in self.embeddings]
        if missing:
            raise CohortError(
                f"the impostor cohort has no embeddings of {', '.join(missing)} (it holds {', '.join(self.models)});"
                " build one with `lfr cohort build` for the configured face models"
            )

    def pair_scores(self, models: tuple[str, ...]) -> PairScores:
        """Cosines of all pairs (upper triangle) per model, split into impostor and genuine pairs."""
        self.require(models)
        people, index = np.unique(self.labels, return_inverse=True)
        first, second = np.triu_indices(len(self.labels), k=1)
        same = index[first] == index[second]
        impostor, genuine = {}, {}
        for model in models:
            vectors = self.embeddings[model].astype(np.float32)
            cosines = (vectors @ vectors.T)[first, second]
            impostor[model] = cosines[~same].astype(np.float64)
            genuine[model] = cosines[same].astype(np.float64)
        return PairScores(impostor, (index[first][~same], index[second][~same]), genuine, len(people))

    def save(self, path: Path) -> None:
        arrays = {
            f"{EMBEDDING_PREFIX}{model}": vectors.astype(np.float32) for model, vectors in self.embeddings.items()
        }
        np.savez_compressed(
            path,
            labels=self.labels.astype(str),
            description=np.array(json.dumps(self.description)),
            allow_pickle=False,
            **arrays,
        )

    @classmethod
    def load(cls, path: Path = SHIPPED_COHORT) -> "ImpostorCohort":
        try:
            with np.load(path, allow_pickle=False) as data:
                embeddings = {
                    key.removeprefix(EMBEDDING_PREFIX): data[key]
                    for key in data.files
                    if key.startswith(EMBEDDING_PREFIX)
                }
                return cls(data["labels"], embeddings, json.loads(str(data["description"])))
        except (OSError, KeyError, ValueError) as exc:
            raise CohortError(
                f"cannot read the impostor cohort {path}: {exc}; reinstall the package or rebuild it with"
                " `lfr cohort build`"
            ) from exc
