"""`SocialFaces`: faces found in social-media images, kept for retrospective search.

Each row carries where the face came from (platform, post, URL, image, box) and when and
where it was captured, so a match can be traced back to its source.
"""

import uuid
from collections.abc import Sequence

import numpy as np
import structlog

from cluster.gallery.bulk import count_rows, insert_rows, query_ids, search_rows
from cluster.gallery.config import GalleryConfig
from cluster.gallery.connection import MilvusConnection
from cluster.gallery.embeddings import as_embedding_batch
from cluster.gallery.expressions import social_filter
from cluster.gallery.records import SocialFace, SocialMatch, StoredSocialFace
from cluster.gallery.rows import social_matches, social_row, stored_social_face
from cluster.gallery.schema import SOCIAL_COLLECTION, SOCIAL_FIELDS

log = structlog.get_logger(__name__)


class SocialFaces:
    """Social-media face operations over one Milvus connection."""

    def __init__(self, config: GalleryConfig, connection: MilvusConnection) -> None:
        self.config = config
        self.connection = connection

    def insert(self, faces: Sequence[SocialFace]) -> list[str]:
        """Store the faces; their new ids, in input order."""
        face_ids = [uuid.uuid4().hex for _ in faces]
        rows = [social_row(face, face_id) for face, face_id in zip(faces, face_ids)]
        insert_rows(self.connection, SOCIAL_COLLECTION, rows, "face_id", "insert social-media faces")
        log.info("social_faces_inserted", faces=len(rows))
        return face_ids

    def search(
        self,
        embeddings: np.ndarray,
        top_k: int | None = None,
        min_similarity: float | None = None,
        platform: str | None = None,
        captured_from: int | None = None,
        captured_to: int | None = None,
    ) -> list[list[SocialMatch]]:
        """Where else was each probe face seen: top-k matches per probe, most similar first, one round trip."""
        probes = as_embedding_batch(embeddings, "probe embeddings")
        if len(probes) == 0:
            return []
        limit = top_k or self.config.top_k
        expression = social_filter(platform, captured_from, captured_to)
        hits = search_rows(
            self.connection,
            SOCIAL_COLLECTION,
            probes,
            expression,
            limit,
            SOCIAL_FIELDS,
            self.config.consistency,
            "search social-media faces",
        )
        return [social_matches(probe_hits, min_similarity) for probe_hits in hits]

    def get(self, face_ids: Sequence[str]) -> list[StoredSocialFace]:
        """The stored faces among these ids."""
        rows = query_ids(self.connection, SOCIAL_COLLECTION, "face_id", face_ids, SOCIAL_FIELDS, "get social faces")
        return [stored_social_face(row) for row in rows]

    def count(self, platform: str | None = None) -> int:
        """Faces stored (of one platform when given)."""
        return count_rows(
            self.connection, SOCIAL_COLLECTION, social_filter(platform, None, None), "count social-media faces"
        )
