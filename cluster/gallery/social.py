"""`SocialFaces`: faces found in social-media images, kept for retrospective search.

Each row carries where the face came from (platform, post, URL, image, box) and when and
where it was captured, so a match can be traced back to its source; and who authorised its
ingest, which ingest stored it and when it expires. Expired faces are never searched, and
`purge_expired` deletes them; `delete_post` and `delete_ingest` delete on request. Deletions are
real (a Strong query afterwards finds nothing) and Milvus is asked to compact them away.
"""

import time
import uuid
from collections.abc import Sequence

import numpy as np
import structlog

from cluster.gallery.bulk import (
    ID_LOOKUP_CHUNK,
    count_rows,
    delete_matching,
    insert_rows,
    query_all,
    query_ids,
    search_rows,
)
from cluster.gallery.config import GalleryConfig
from cluster.gallery.connection import MilvusConnection
from cluster.gallery.embeddings import as_embedding_batch
from cluster.gallery.expressions import expired_filter, ids_filter, ingest_filter, social_filter
from cluster.gallery.records import (
    POST_ID_MAX,
    SocialFace,
    SocialMatch,
    StoredSocialFace,
    check_id,
    check_text,
    check_time,
)
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
        now: int | None = None,
    ) -> list[list[SocialMatch]]:
        """Where else was each probe face seen: top-k matches per probe, most similar first, one round trip.

        Faces expired at `now` (default: the current time) are left out.
        """
        probes = as_embedding_batch(embeddings, "probe embeddings")
        if len(probes) == 0:
            return []
        limit = top_k or self.config.top_k
        expression = social_filter(platform, captured_from, captured_to, _now(now))
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

    def of_post(self, platform: str, post_id: str, ingest_id: str, now: int | None = None) -> list[StoredSocialFace]:
        """The unexpired faces one ingest stored of one post, by image then left to right (the order `--face N` counts).

        As in `delete_post`, the post id (free text) is matched here, not in the filter expression.
        """
        check_id(platform, "platform")
        check_text(post_id, "post_id", POST_ID_MAX)
        check_id(ingest_id, "ingest_id")
        rows = query_all(
            self.connection,
            SOCIAL_COLLECTION,
            f"{social_filter(platform, None, None, _now(now))} and {ingest_filter(ingest_id)}",
            SOCIAL_FIELDS,
            f"find the faces of post {post_id}",
        )
        faces = [stored_social_face(row) for row in rows if row["post_id"] == post_id]
        return sorted(faces, key=lambda face: (face.image_path, face.box[0], face.box[1], face.face_id))

    def count(self, platform: str | None = None) -> int:
        """Faces stored (of one platform when given)."""
        return count_rows(
            self.connection, SOCIAL_COLLECTION, social_filter(platform, None, None), "count social-media faces"
        )

    def delete_post(self, platform: str, post_id: str) -> int:
        """Delete every face of one post; how many were deleted.

        Post ids are free text, which a filter expression cannot carry safely, so the platform's
        rows are read and the post's faces deleted by their face ids.
        """
        check_id(platform, "platform")
        check_text(post_id, "post_id", POST_ID_MAX)
        rows = query_all(
            self.connection,
            SOCIAL_COLLECTION,
            social_filter(platform, None, None),
            ["face_id", "post_id"],
            f"find the faces of post {post_id}",
        )
        face_ids = [str(row["face_id"]) for row in rows if row["post_id"] == post_id]
        deleted = self._delete_ids(face_ids, f"delete post {post_id}")
        log.info("social_post_deleted", platform=platform, faces=deleted)
        return deleted

    def delete_ingest(self, ingest_id: str) -> int:
        """Delete every face one ingest stored (such as what an ingest stopped part-way left); how many."""
        deleted = delete_matching(
            self.connection, SOCIAL_COLLECTION, ingest_filter(ingest_id), "face_id", f"delete ingest {ingest_id}"
        )
        log.info("social_ingest_deleted", ingest_id=ingest_id, faces=len(deleted))
        return len(deleted)

    def purge_expired(self, now: int | None = None) -> int:
        """Delete every face whose expiry has passed; how many were deleted."""
        purged_at = _now(now)
        deleted = delete_matching(
            self.connection, SOCIAL_COLLECTION, expired_filter(purged_at), "face_id", "purge expired social faces"
        )
        log.info("social_expired_purged", faces=len(deleted), now=purged_at)
        return len(deleted)

    def _delete_ids(self, face_ids: Sequence[str], operation: str) -> int:
        deleted = 0
        for start in range(0, len(face_ids), ID_LOOKUP_CHUNK):
            chunk = face_ids[start : start + ID_LOOKUP_CHUNK]
            deleted += len(
                delete_matching(self.connection, SOCIAL_COLLECTION, ids_filter("face_id", chunk), "face_id", operation)
            )
        return deleted


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else check_time(now, "now")
