"""Factories for gallery test objects: unit vectors, entries, social faces, fresh watchlists."""

import time
import uuid

import numpy as np

from cluster.gallery.gallery import Gallery
from cluster.gallery.records import SocialFace, Watchlist, WatchlistEntry

HOUR = 3600
DAY = 24 * HOUR
YEAR = 365 * DAY
SHORT_EXPIRY_S = HOUR
"""An entry that must expire first: every other test's entry (backends are shared by the session) lives a day
or more, so purging between this and twice this deletes exactly the short one."""


def unit_vectors(count: int, seed: int) -> np.ndarray:
    """(count, 128) random L2-normalised float32 vectors."""
    vectors = np.random.default_rng(seed).normal(size=(count, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def new_watchlist(gallery: Gallery, expires_in_s: int = YEAR) -> Watchlist:
    """A freshly authorised watchlist with a unique id (collections are shared by the session's tests)."""
    return gallery.watchlists.create(
        watchlist_id=f"wl-{uuid.uuid4().hex[:12]}",
        name="Test watchlist",
        reason="integration test",
        authorised_by="Supt. A. Example",
        expires_at=int(time.time()) + expires_in_s,
    )


def entry(person_id: str, embedding: np.ndarray, **overrides) -> WatchlistEntry:
    fields = {
        "person_id": person_id,
        "label": person_id.replace("_", " "),
        "category": "wanted",
        "source": "custody image",
        "authorised_by": "Insp. B. Example",
        "embedding": embedding,
    }
    fields.update(overrides)
    return WatchlistEntry(**fields)


def social_face(
    embedding: np.ndarray, platform: str, post_id: str, captured_at: int = 1_700_000_000, **overrides
) -> SocialFace:
    fields = {
        "platform": platform,
        "post_id": post_id,
        "url": f"https://example.org/{platform}/{post_id}",
        "captured_at": captured_at,
        "place": "Trafalgar Square",
        "image_path": f"/evidence/{post_id}.jpg",
        "box": np.array([10.0, 20.0, 110.0, 140.0]),
        "authorised_by": "Supt. A. Example",
        "ingest_id": "ingest-test",
        "expires_at": int(time.time()) + 86_400,
        "embedding": embedding,
    }
    fields.update(overrides)
    return SocialFace(**fields)
