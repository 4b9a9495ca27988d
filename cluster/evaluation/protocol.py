"""The open-set protocol: which labelled photos are enrolled, which are probes, and every system's scores.

Split by rule (`split_by_rule`): people with at least two photos can be listed; a seeded random
share of them go on the watchlist with their first photo (by file name) enrolled and their other
photos as mated probes; every photo of everyone else is a non-mated probe. People of the
impostor cohort are left out altogether, so no threshold or fusion weight is ever tested on the
faces it was fitted on. A manifest (`split_from_manifest`) names each photo's role instead.

`LabelledEmbeddings` holds every photo's embedding by every model (a photo with no usable face
is kept as a failure to acquire); `system_outcomes` scores probes against the gallery for each
model alone and fused, and reduces the scores to `ProbeOutcomes`.
"""

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cluster.evaluation.dataset import LabelledPhoto, portrait_faces
from cluster.evaluation.openset import ProbeOutcomes
from cluster.matching.fusion import ScoreFusion
from cluster.vision.pipeline import FacePipeline

FUSED = "fused"
MANIFEST_COLUMNS = ("photo", "person", "role")
ROLES = ("gallery", "probe")


@dataclass(frozen=True, eq=False)
class LabelledEmbeddings:
    """Per photo: path, person, whether a face was found, and each model's unit embedding (zeros if not)."""

    paths: tuple[str, ...]
    people: np.ndarray
    acquired: np.ndarray
    vectors: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        n = len(self.paths)
        if self.people.shape != (n,) or self.acquired.shape != (n,):
            raise ValueError(f"LabelledEmbeddings: expected {n} people and acquired flags, one per photo")
        for model, vectors in self.vectors.items():
            if vectors.ndim != 2 or len(vectors) != n:
                raise ValueError(f"LabelledEmbeddings.vectors[{model!r}]: expected ({n}, d), got {vectors.shape}")

    @classmethod
    def embed(
        cls,
        pipeline: FacePipeline,
        photos: Sequence[LabelledPhoto],
        on_photo: Callable[[], object] | None = None,
    ) -> "LabelledEmbeddings":
        """Every photo's portrait face through every configured model."""
        found = []
        for labelled in portrait_faces(pipeline, photos):
            found.append(labelled.face)
            if on_photo is not None:
                on_photo()
        models = {name: None for face in found if face is not None for name in face.embeddings}
        vectors = {}
        for model in models:
            size = next(len(face.embeddings[model]) for face in found if face is not None)
            vectors[model] = np.stack(
                [face.embeddings[model] if face is not None else np.zeros(size, np.float32) for face in found]
            ).astype(np.float32)
        return cls(
            tuple(str(photo.path) for photo in photos),
            np.array([photo.person for photo in photos]),
            np.array([face is not None for face in found]),
            vectors,
        )

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            paths=np.array(self.paths),
            people=self.people.astype(str),
            acquired=self.acquired,
            allow_pickle=False,
            **{f"vectors:{model}": vectors for model, vectors in self.vectors.items()},
        )

    @classmethod
    def load(cls, path: Path) -> "LabelledEmbeddings":
        with np.load(path, allow_pickle=False) as data:
            vectors = {key.removeprefix("vectors:"): data[key] for key in data.files if key.startswith("vectors:")}
            return cls(tuple(str(p) for p in data["paths"]), data["people"], data["acquired"], vectors)

    def without_people(self, people: Iterable[str]) -> "LabelledEmbeddings":
        keep = ~np.isin(self.people, list(people))
        return LabelledEmbeddings(
            tuple(p for p, k in zip(self.paths, keep) if k),
            self.people[keep],
            self.acquired[keep],
            {model: vectors[keep] for model, vectors in self.vectors.items()},
        )


@dataclass(frozen=True)
class Split:
    """Indices into a `LabelledEmbeddings`: the enrolled photos and the probes."""

    gallery: np.ndarray
    probes: np.ndarray
    rule: str

    def describe(self, data: LabelledEmbeddings) -> str:
        listed = len(set(data.people[self.gallery]))
        mated = int(np.isin(data.people[self.probes], data.people[self.gallery]).sum())
        return (
            f"{listed} people on the list ({len(self.gallery)} enrolled photos), {len(self.probes)} probes:"
            f" {mated} of listed people, {len(self.probes) - mated} of people not on the list; {self.rule}"
        )


def split_by_rule(data: LabelledEmbeddings, watchlist_share: float = 0.5, seed: int = 0) -> Split:
    """See the module docstring; only photos where a face was found are enrolled."""
    if not 0.0 < watchlist_share < 1.0:
        raise ValueError(f"watchlist_share must be within (0, 1), got {watchlist_share}")
    enrollable = sorted(
        {person for person in data.people if np.count_nonzero((data.people == person) & data.acquired) >= 2}
    )
    if len(enrollable) < 2:
        raise ValueError("fewer than two people have two photos with a face; the folder cannot give a watchlist")
    rng = np.random.default_rng(seed)
    listed = set(rng.choice(enrollable, max(1, round(watchlist_share * len(enrollable))), replace=False))
    gallery = []
    for person in sorted(listed):
        rows = [i for i in np.flatnonzero(data.people == person) if data.acquired[i]]
        gallery.append(min(rows, key=lambda i: data.paths[i]))
    gallery_index = np.array(sorted(gallery))
    probes = np.setdiff1d(np.arange(len(data.paths)), gallery_index)
    rule = (
        f"rule: {watchlist_share:g} of the people with two or more photos (seed {seed}) listed with their first"
        " photo; every other photo is a probe"
    )
    return Split(gallery_index, probes, rule)


def split_from_manifest(data: LabelledEmbeddings, manifest: Path) -> Split:
    """Roles from a CSV with columns photo,person,role (role: gallery or probe); photo paths as the folder gives."""
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(MANIFEST_COLUMNS) - set(reader.fieldnames):
            raise ValueError(f"{manifest}: expected a header with the columns {', '.join(MANIFEST_COLUMNS)}")
        roles = {}
        for number, row in enumerate(reader, start=2):
            if row["role"] not in ROLES:
                raise ValueError(
                    f"{manifest}: row {number}: role must be one of {', '.join(ROLES)}, got {row['role']!r}"
                )
            roles[str((manifest.parent / row["photo"]).resolve())] = row["role"]
    index = {str(Path(path).resolve()): i for i, path in enumerate(data.paths)}
    unknown = sorted(set(roles) - set(index))
    if unknown:
        raise ValueError(f"{manifest}: {len(unknown)} photos are not in the folder evaluated, such as {unknown[0]}")
    gallery = np.array(sorted(index[p] for p, role in roles.items() if role == "gallery"), dtype=int)
    probes = np.array(sorted(index[p] for p, role in roles.items() if role == "probe"), dtype=int)
    return Split(gallery, probes, f"manifest {manifest.name}")


def system_scores(data: LabelledEmbeddings, split: Split, fusion: ScoreFusion) -> dict[str, np.ndarray]:
    """(probes, gallery) scores for each model alone (cosine) and for the fused score."""
    cosines = {
        model: data.vectors[model][split.probes] @ data.vectors[model][split.gallery].T for model in fusion.models
    }
    return {**cosines, FUSED: fusion.fuse(cosines)}


def system_outcomes(data: LabelledEmbeddings, split: Split, fusion: ScoreFusion) -> dict[str, ProbeOutcomes]:
    """Per system, the probes' outcomes against the split's gallery."""
    return {
        name: ProbeOutcomes.from_scores(
            scores, data.people[split.gallery], data.people[split.probes], acquired=data.acquired[split.probes]
        )
        for name, scores in system_scores(data, split, fusion).items()
    }
