"""Ingesting social-media posts: every face found is stored with its post's provenance, and the post with its triage.

Posts are taken in batches: their images are detected and embedded in one call of the face
finder (the face pipeline in this process for `lfr social ingest`, the cameras' face service for
`lfr social watch`), their texts scored in one classifier call, the batch's faces inserted into
the gallery in one call and its posts into the records database in one transaction. Every face
of an image is stored (a crowd photo holds many people, any of whom may be searched for later);
faces and posts are labelled with the ingest's authorisation, id and expiry. A media file that
cannot be read is reported with its post's position and skipped; the post's other media and its
text are still ingested. How far an ingest got is kept as it goes (`faces_stored`, `posts_read`),
so an ingest stopped part-way can still say what it left stored.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from cluster.gallery.records import SocialFace
from cluster.gallery.social import SocialFaces
from cluster.retro.footage import FootageError, read_image
from cluster.social.post import Feed, Post, PostProblem
from cluster.social.records import PostRecord, SocialPostRecords
from cluster.social.triage import TextTriage, TriageModel, TriageScore
from cluster.vision.face import Face

log = structlog.get_logger(__name__)

POSTS_PER_BATCH = 8
"""Posts whose images are detected and embedded in one pipeline call; their faces are inserted in one call."""


@dataclass(frozen=True)
class IngestLabel:
    """What every face and post of one ingest is stored with: who authorised it, the ingest's id, its expiry."""

    authorised_by: str
    ingest_id: str
    expires_at: int


class FaceFinder(Protocol):
    """Finds every face of each image, in order: a `FacePipeline`'s `process` (a batch ingest) or the face service
    (`lfr social watch`)."""

    def __call__(self, images: Sequence[np.ndarray], /) -> list[list[Face]]: ...


@dataclass(frozen=True)
class StoredPost:
    """One post as the ingest stored it: its faces (with the image each came from) and its text's triage."""

    post: Post
    faces: tuple[tuple[str, Face], ...]
    score: TriageScore


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest stored: posts read, faces stored, posts without a face, posts flagged, and problems.

    Positions are the posts' lines (a manifest) or items (an archive)."""

    posts: int
    faces: int
    without_face: tuple[int, ...]
    flagged: tuple[int, ...]
    model: TriageModel
    threshold: float
    problems: tuple[PostProblem, ...]

    def skipped(self, feed: Feed) -> list[int]:
        """Every position with something skipped, in order: refused by the reader, or a media file unreadable."""
        return sorted({p.position for p in feed.problems} | {p.position for p in self.problems})


class SocialIngest:
    """Stores the faces of posts in the gallery's social-media collection and the posts in the records database."""

    def __init__(
        self,
        find_faces: FaceFinder,
        social: SocialFaces,
        posts: SocialPostRecords,
        triage: TextTriage,
        label: IngestLabel,
    ) -> None:
        self.find_faces = find_faces
        self.social = social
        self.posts = posts
        self.triage = triage
        self.label = label
        self.faces_stored = 0
        self.posts_read = 0

    def ingest(self, posts: Sequence[Post], on_post: Callable[[Post], object] | None = None) -> IngestSummary:
        without_face: list[int] = []
        flagged: list[int] = []
        problems: list[PostProblem] = []
        for start in range(0, len(posts), POSTS_PER_BATCH):
            batch = posts[start : start + POSTS_PER_BATCH]
            stored = self.store(batch, problems)
            without_face.extend(item.post.position for item in stored if not item.faces)
            flagged.extend(item.post.position for item in stored if item.score.flagged)
            if on_post is not None:
                for post in batch:
                    on_post(post)
        log.info(
            "social_ingested",
            posts=self.posts_read,
            faces=self.faces_stored,
            flagged=len(flagged),
            problems=len(problems),
        )
        return IngestSummary(
            self.posts_read,
            self.faces_stored,
            tuple(without_face),
            tuple(flagged),
            self.triage.model,
            self.triage.threshold,
            tuple(sorted(problems, key=lambda p: p.position)),
        )

    def store(self, batch: Sequence[Post], problems: list[PostProblem]) -> list[StoredPost]:
        """Store one batch of posts (at most a few, see POSTS_PER_BATCH): their faces found in one call, their texts
        scored in one call, faces and posts each inserted in one call. Unreadable media are added to `problems`."""
        kept, images = self._read_media(batch, problems)
        found = self.find_faces([pixels for _, _, pixels in images]) if images else []
        faces_of: list[list[tuple[str, Face]]] = [[] for _ in kept]
        for (number, path, _), in_image in zip(images, found, strict=True):
            faces_of[number].extend((path, face) for face in in_image)
        scores = self.triage.score([post.text for post in kept]) if kept else []
        faces = [self._face(post, path, face) for post, pairs in zip(kept, faces_of) for path, face in pairs]
        if faces:
            self.social.insert(faces)
        self.faces_stored += len(faces)
        ingested_at = int(time.time())
        if kept:
            self.posts.insert(
                [
                    self._record(post, len(pairs), score, ingested_at)
                    for post, pairs, score in zip(kept, faces_of, scores)
                ]
            )
        self.posts_read += len(kept)
        return [StoredPost(post, tuple(pairs), score) for post, pairs, score in zip(kept, faces_of, scores)]

    def _read_media(
        self, batch: Sequence[Post], problems: list[PostProblem]
    ) -> tuple[list[Post], list[tuple[int, str, np.ndarray]]]:
        """The posts left to ingest and their readable images (post number in the list, path, pixels).

        An unreadable file is a problem of its post; a post left with neither an image nor text is skipped."""
        kept: list[Post] = []
        images: list[tuple[int, str, np.ndarray]] = []
        for post in batch:
            readable: list[tuple[int, str, np.ndarray]] = []
            for path in post.media:
                try:
                    readable.append((len(kept), str(path), read_image(path)))
                except FootageError as exc:
                    problems.append(PostProblem(post.position, str(exc)))
            if readable or post.text.strip():
                kept.append(post)
                images.extend(readable)
        return kept, images

    def _record(self, post: Post, faces: int, score: TriageScore, ingested_at: int) -> PostRecord:
        return PostRecord(
            row_id=uuid.uuid4().hex,
            ingest_id=self.label.ingest_id,
            platform=post.platform,
            post_id=post.post_id,
            author=post.author,
            url=post.url,
            posted_at=post.posted_at,
            place=post.place,
            text=post.text,
            media=len(post.media),
            faces=faces,
            triage_score=score.score,
            triage_model=self.triage.model.name,
            triage_model_version=self.triage.model.version,
            triage_threshold=self.triage.threshold,
            flagged=score.flagged,
            authorised_by=self.label.authorised_by,
            ingested_at=ingested_at,
            expires_at=self.label.expires_at,
        )

    def _face(self, post: Post, path: str, face: Face) -> SocialFace:
        return SocialFace(
            platform=post.platform,
            post_id=post.post_id,
            url=post.url,
            captured_at=post.posted_at,
            place=post.place,
            image_path=path,
            box=face.box,
            authorised_by=self.label.authorised_by,
            ingest_id=self.label.ingest_id,
            expires_at=self.label.expires_at,
            embedding=face.embedding,
        )
