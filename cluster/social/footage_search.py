"""Footage searched for the faces of one flagged social-media post: where else, on the deployment's recordings, the
people in the post were seen.

Only a post whose text the triage flagged is searched, as for leads (`cluster.social.leads`): the
faces of every other post are kept for `lfr social search` under the social retention rule and
never compared with anything else, since a flag is the only reason on record to look for the people
in a post. The query is the post's stored faces (all of them, or the one asked for), found again in
the post's stored image and embedded there by every configured model: the gallery keeps only the
primary model's embedding of a social face, and the match score fuses every model's cosine, as
`lfr retro` and the leads score it. The footage is searched by `RetroSearch`, at the threshold
calibrated for `matching.target_fpir` with the post's faces as the list's entries, as a watchlist
version's threshold is set for its size. A footage face whose best post face reaches it is a
`RetroMatch` with its crop; any other is counted and dropped with its frame.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cluster.gallery.records import StoredSocialFace
from cluster.gallery.social import SocialFaces
from cluster.matching.fusion import ScoreFusion
from cluster.retro.footage import FootageError, read_image
from cluster.retro.search import Hit
from cluster.social.records import PostRecord, SocialPostRecords
from cluster.vision.face import Face
from cluster.vision.pipeline import FacePipeline

FOOTAGE_KIND = "social_footage"
"""The `kind` of the search's entries in the audit log."""
POST_CATEGORY = "social post"
"""The category a match against a post's face carries in the reports (a watchlist entry's category otherwise)."""
MIN_BOX_OVERLAP = 0.5
"""Intersection over union at which a face detected again in the post's image is the stored face."""


class PostNotSearchable(ValueError):
    """A post that may not or cannot be searched for; the message says why and what to do. Nothing was searched."""


@dataclass(frozen=True)
class PostFaces:
    """The faces of a stored post to search footage for, embedded by every configured model.

    faces: the stored faces (gallery rows) searched with; embeddings: (n, 128) primary-model
    embeddings, extra: each further model's (n, d), in the same order.
    """

    record: PostRecord
    faces: tuple[StoredSocialFace, ...]
    embeddings: np.ndarray = field(repr=False)
    extra: Mapping[str, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def key(self) -> str:
        """`platform:post_id`, as the case's items name the post."""
        return f"{self.record.platform}:{self.record.post_id}"

    @property
    def face_ids(self) -> tuple[str, ...]:
        return tuple(face.face_id for face in self.faces)

    @property
    def digest(self) -> str:
        """SHA-256 over the post's key, the ingest that stored it and the face ids searched with, one per line."""
        lines = [self.record.platform, self.record.post_id, self.record.ingest_id, *self.face_ids]
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def split_post_key(key: str) -> tuple[str, str]:
    """`x:1001` as ("x", "1001"): the platform before the first colon, the post id after it."""
    platform, colon, post_id = key.partition(":")
    if not colon or not platform or not post_id:
        raise PostNotSearchable(
            f"{key!r} does not name a post: write PLATFORM:POST_ID (such as x:1001), as a social case's items and"
            " `lfr social search` show it"
        )
    return platform, post_id


def stored_post(
    records: SocialPostRecords,
    social: SocialFaces,
    platform: str,
    post_id: str,
    face_index: int | None,
    now: int | None = None,
) -> tuple[PostRecord, list[StoredSocialFace]]:
    """The post's latest stored record and its faces to search with; PostNotSearchable saying why not."""
    name = f"{platform}:{post_id}"
    record = records.of_post(platform, post_id, now=now)
    if record is None:
        raise PostNotSearchable(
            f"no stored post {name}: it was never ingested, or it was deleted or purged after its retention;"
            " ingest it (`lfr social ingest` or `lfr social watch`) before searching footage for it"
        )
    if not record.flagged:
        scored = (
            "has no text to score"
            if record.triage_score is None
            else f"scored {record.triage_score:.3f}, below the triage threshold {record.triage_threshold:g}"
        )
        raise PostNotSearchable(
            f"post {name} is not flagged (its text {scored}): only a flagged post's faces are searched for in"
            " footage, since the flag is the recorded reason to look for the people in it; the faces of other"
            " posts are kept only for `lfr social search`"
        )
    if record.faces == 0:
        raise PostNotSearchable(f"post {name} has no face to search for: none was found in its images")
    faces = social.of_post(platform, post_id, record.ingest_id, now=now)
    if not faces:
        raise PostNotSearchable(
            f"the faces of post {name} are no longer stored (deleted or purged); ingest the post again to search"
            " for them"
        )
    if face_index is None:
        return record, faces
    if not 0 <= face_index < len(faces):
        raise PostNotSearchable(
            f"--face {face_index} asked for, but post {name} has {len(faces)} stored face"
            f"{'s' if len(faces) != 1 else ''} (numbered by image, then left to right); pass an index from 0 to"
            f" {len(faces) - 1}, or leave --face out to search for all of them"
        )
    return record, [faces[face_index]]


def embed_post_faces(pipeline: FacePipeline, record: PostRecord, faces: Sequence[StoredSocialFace]) -> PostFaces:
    """The stored faces found again in the post's images and embedded there by every model.

    PostNotSearchable when an image can no longer be read or no longer holds the stored face.
    """
    paths = sorted({face.image_path for face in faces})
    frames = []
    for path in paths:
        try:
            frames.append(read_image(Path(path)))
        except FootageError as exc:
            raise PostNotSearchable(
                f"the image of post {record.platform}:{record.post_id} can no longer be read ({exc}); the gallery"
                " keeps only the primary model's embedding of its faces and the match score needs every model's:"
                " restore the image at that path to search for the post"
            ) from exc
    found = dict(zip(paths, pipeline.with_second_stage(frames, pipeline.process(frames)), strict=True))
    chosen = [_refound(face, found[face.image_path]) for face in faces]
    models = sorted(chosen[0].extra_embeddings)
    return PostFaces(
        record,
        tuple(faces),
        np.stack([face.embedding for face in chosen]),
        {model: np.stack([face.extra_embeddings[model] for face in chosen]) for model in models},
    )


def _refound(stored: StoredSocialFace, detected: Sequence[Face]) -> Face:
    """The detected face that is the stored one: the one whose box overlaps the stored box most."""
    overlaps = [_box_overlap(stored.box, face.box) for face in detected]
    best = int(np.argmax(overlaps)) if overlaps else -1
    if best < 0 or overlaps[best] < MIN_BOX_OVERLAP:
        raise PostNotSearchable(
            f"{stored.image_path}: the stored face {stored.face_id} is no longer found in the image (it changed"
            " since the ingest); ingest the post again to search for it"
        )
    return detected[best]


def _box_overlap(a: Sequence[float], b: Sequence[float] | np.ndarray) -> float:
    """Intersection over union of two x1 y1 x2 y2 boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = float(width * height)
    return inter / (float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter)


class PostFacesMatcher:
    """The best face of one post for each footage face, by the fused score of every model's cosine (a `FaceMatcher`).

    The post has a few faces, so they are compared in memory: no gallery round trip, nothing stored.
    """

    def __init__(self, post: PostFaces, fusion: ScoreFusion) -> None:
        missing = [model for model in fusion.models[1:] if model not in post.extra]
        if missing:
            raise ValueError(f"the post's faces were not embedded by {', '.join(missing)}; the fused score needs it")
        self.post = post
        self.fusion = fusion

    def best(self, probes: np.ndarray, extra: Mapping[str, np.ndarray]) -> list[Hit | None]:
        primary, *others = self.fusion.models
        cosines = {primary: probes @ self.post.embeddings.T}
        for model in others:
            if model not in extra:
                raise ValueError(f"the footage faces were not embedded by {model}; the fused score needs it")
            cosines[model] = extra[model] @ self.post.extra[model].T
        scores = self.fusion.fuse(cosines)
        hits: list[Hit | None] = []
        for row, column in enumerate(np.argmax(scores, axis=1)):
            hits.append(
                Hit(
                    score=float(scores[row, column]),
                    person_id=self.post.key,
                    label=self.post.record.url,
                    category=POST_CATEGORY,
                    entry_id=self.post.faces[column].face_id,
                    model_scores={model: float(values[row, column]) for model, values in cosines.items()},
                )
            )
        return hits
