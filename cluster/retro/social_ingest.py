"""Ingesting social-media images: every face found is stored with where and when it was posted.

Images are detected and embedded in batches, and each batch's faces are inserted in one call.
Every face of an image is stored (a crowd photo holds many people, any of whom may be searched
for later), labelled with the ingest's authorisation, id and expiry; an image that cannot be read
is reported with its manifest line and skipped. How far an ingest got is kept as it goes
(`faces_stored`), so an ingest stopped part-way can still say what it left stored.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import structlog

from cluster.gallery.records import SocialFace
from cluster.gallery.social import SocialFaces
from cluster.retro.footage import FootageError, read_image
from cluster.retro.social_manifest import Manifest, ManifestPost, ManifestProblem
from cluster.vision.pipeline import FacePipeline

log = structlog.get_logger(__name__)

POSTS_PER_BATCH = 8
"""Images detected and embedded in one pipeline call; their faces are inserted in one call."""


@dataclass(frozen=True)
class IngestLabel:
    """What every face of one ingest is stored with: who authorised it, the ingest's id, when the faces expire."""

    authorised_by: str
    ingest_id: str
    expires_at: int


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest stored: posts read, faces stored, lines whose image held no face, and problems."""

    posts: int
    faces: int
    without_face: tuple[int, ...]
    problems: tuple[ManifestProblem, ...]

    def skipped_lines(self, manifest: Manifest) -> list[int]:
        """Every line skipped, in order: those the manifest refused and those whose image could not be read."""
        return sorted({p.line for p in manifest.problems} | {p.line for p in self.problems})


class SocialIngest:
    """Stores the faces of manifest posts in the gallery's social-media collection."""

    def __init__(self, pipeline: FacePipeline, social: SocialFaces, label: IngestLabel) -> None:
        self.pipeline = pipeline
        self.social = social
        self.label = label
        self.faces_stored = 0
        self.posts_read = 0

    def ingest(
        self, posts: Sequence[ManifestPost], on_post: Callable[[ManifestPost], object] | None = None
    ) -> IngestSummary:
        stored = read = 0
        without_face: list[int] = []
        problems: list[ManifestProblem] = []
        for start in range(0, len(posts), POSTS_PER_BATCH):
            loaded: list[tuple[ManifestPost, np.ndarray]] = []
            for post in posts[start : start + POSTS_PER_BATCH]:
                try:
                    loaded.append((post, read_image(post.image_path)))
                except FootageError as exc:
                    problems.append(ManifestProblem(post.line, str(exc)))
            faces: list[SocialFace] = []
            for (post, _), found in zip(loaded, self.pipeline.process([pixels for _, pixels in loaded])):
                if not found:
                    without_face.append(post.line)
                faces.extend(
                    SocialFace(
                        platform=post.platform,
                        post_id=post.post_id,
                        url=post.url,
                        captured_at=post.posted_at,
                        place=post.place,
                        image_path=str(post.image_path),
                        box=face.box,
                        authorised_by=self.label.authorised_by,
                        ingest_id=self.label.ingest_id,
                        expires_at=self.label.expires_at,
                        embedding=face.embedding,
                    )
                    for face in found
                )
            if faces:
                self.social.insert(faces)
            stored += len(faces)
            read += len(loaded)
            self.faces_stored, self.posts_read = stored, read
            if on_post is not None:
                for post in posts[start : start + POSTS_PER_BATCH]:
                    on_post(post)
        log.info("social_ingested", posts=read, faces=stored, problems=len(problems))
        return IngestSummary(read, stored, tuple(without_face), tuple(sorted(problems, key=lambda p: p.line)))
