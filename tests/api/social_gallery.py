"""A real social-media gallery for the control room's social search: lfw10 photos posted, ingested by
`lfr social ingest` into milvus-lite, with the posts' text triaged by the real classifier."""

import json
from pathlib import Path

from cluster.config import LfrConfig
from tests.test_watchlist_cli import lfr, photo

SEARCHED = photo("Tony_Blair", 10)
"""The photo officers search with: Tony Blair appears in two posts (neither of them this photo)."""
CALM = "Crowds gathering in Trafalgar Square this morning"
OFFENSIVE = "fuck the police, absolute scum"
"""A text the classifier flags for an officer (as tests/test_social_posts.py shows)."""
POSTS = {
    "1001": {"platform": "x", "author": "@square_watcher", "place": "Trafalgar Square", "text": CALM},
    "fb-3003": {"platform": "facebook", "author": "Jo Bloggs", "place": "Whitehall", "text": OFFENSIVE},
}
"""The two posts Tony Blair appears in, as their provenance is shown."""


def ingest_posts(config: LfrConfig, folder: Path) -> None:
    """Post three photos (Blair twice, Bush once) and ingest them, authorised, into the configuration's gallery."""
    lines = [
        {
            "image": str(photo("Tony_Blair", 3)),
            "post_id": "1001",
            "url": "https://example.org/x/1001",
            "posted_at": "2025-06-14T10:32:00+01:00",
            **POSTS["1001"],
        },
        {
            "image": str(photo("George_W_Bush", 2)),
            "platform": "instagram",
            "post_id": "p-2002",
            "url": "https://example.org/instagram/p-2002",
            "posted_at": "2025-06-14T11:00:00Z",
            "author": "@elsewhere",
        },
        {
            "image": str(photo("Tony_Blair", 7)),
            "post_id": "fb-3003",
            "url": "https://example.org/facebook/fb-3003",
            "posted_at": "2025-06-15T08:00:00Z",
            **POSTS["fb-3003"],
        },
    ]
    manifest = folder / "posts.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    ran = lfr(
        config,
        "social", "ingest", manifest,
        "--authorised-by", "Supt. A. Example",
        "--reason", "Operation Bramble: who was in the square",
        "--officer", "DS Patel",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert ran.out.startswith("stored 3 faces from 3 posts"), ran.out
