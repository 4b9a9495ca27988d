"""Purging the gallery on its own: expired watchlist entries and social-media faces and posts, every interval, audited.

Expired entries and faces are never searched (the searches filter on expiry), but their
embeddings stay in Milvus until something deletes them. Wherever the gallery is served (the live
run of a deployment), this timer deletes them: once at start, then every `retention.interval_s`,
each purge through the audited services (an intent and an outcome entry, actor
`system:retention`). A failed purge (Milvus restarting, say) is logged and retried at the next
interval; it never stops the timer.
"""

from dataclasses import dataclass

import structlog

from cluster.alerts.store import RETENTION_ACTOR
from cluster.application.social import SocialService
from cluster.application.watchlists import WatchlistService
from cluster.audit.log import AuditLog
from cluster.config import LfrConfig
from cluster.gallery.gallery import Gallery
from cluster.periodic import Periodic

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GalleryPurge:
    """What one run deleted: expired watchlist entries, and expired social-media faces and posts."""

    watchlist_entries: int
    social_faces: int
    social_posts: int


class GalleryRetention(Periodic):
    """Runs both gallery purges every `config.retention.interval_s`, first at start, until stopped."""

    def __init__(self, gallery: Gallery, audit: AuditLog, config: LfrConfig) -> None:
        super().__init__("gallery-retention", self._purge_and_log, config.retention.interval_s, run_at_start=True)
        self._watchlists = WatchlistService(gallery, audit, config)
        self._social = SocialService(gallery, audit, config)

    def run_once(self) -> GalleryPurge:
        watchlist_entries = self._watchlists.purge_expired(officer=RETENTION_ACTOR)
        social = self._social.purge_expired(officer=RETENTION_ACTOR)
        return GalleryPurge(watchlist_entries, social.faces, social.posts)

    def _purge_and_log(self) -> None:
        purged = self.run_once()
        log.info(
            "gallery_purged",
            watchlist_entries=purged.watchlist_entries,
            social_faces=purged.social_faces,
            social_posts=purged.social_posts,
        )
