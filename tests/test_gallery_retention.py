"""The gallery purges itself: expired watchlist entries and social-media faces and posts deleted on a timer, audited.

On a real milvus-lite gallery with real face embeddings (lfw10). Expired rows are written as the
gallery would hold them once their time has passed (enrolled in the past with a past expiry);
the timer must delete them, and only them, with intent and outcome entries by `system:retention`.
"""

import time
from collections.abc import Iterator

import pytest

from cluster.alerts.config import RetentionConfig
from cluster.alerts.store import RETENTION_ACTOR
from cluster.application.gallery_retention import GalleryRetention
from cluster.application.watchlists import WatchlistService
from cluster.audit.actions import AuditAction
from cluster.audit.opening import open_audit_log
from cluster.config import LfrConfig
from cluster.enrolment.expiry import parse_expiry
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.records import PersonRecord, SocialFace, WatchlistEntry
from cluster.social.records import PostRecord, SocialPostRecords
from cluster.vision.image_io import load_image
from tests.records import opened_gallery
from tests.test_watchlist_cli import audit_entries, audit_head, lite_lfr_config, photo
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        yield config.model_copy(update={"retention": RetentionConfig(interval_s=0.2)})


def social_face(embedding, box, post_id: str, expires_at: int) -> SocialFace:
    return SocialFace(platform="x", post_id=post_id, url=f"https://example.org/x/{post_id}", captured_at=1, place="",
                      image_path=f"{post_id}.jpg", box=box, authorised_by="Supt. A. Example", ingest_id="ingest-1",
                      expires_at=expires_at, embedding=embedding)  # fmt: skip


def social_post(post_id: str, expires_at: int) -> PostRecord:
    return PostRecord(row_id=post_id, ingest_id="ingest-1", platform="x", post_id=post_id,
                      author="@someone", url=f"https://example.org/x/{post_id}", posted_at=1, place="",
                      text=f"the text of {post_id}", media=1, faces=1, triage_score=0.1,
                      triage_model="alt-profanity-check", triage_model_version="1.9.1", triage_threshold=0.5,
                      flagged=False, authorised_by="Supt. A. Example", ingested_at=1,
                      expires_at=expires_at)  # fmt: skip


def test_expired_entries_and_faces_are_purged_on_their_own_and_audited(lfr_config, face_pipeline):
    (blair,), (chavez,) = face_pipeline.process([load_image(photo(p, 1)) for p in ("Tony_Blair", "Hugo_Chavez")])
    now = int(time.time())
    audit = open_audit_log(lfr_config.database, lfr_config.audit)
    with opened_gallery(lfr_config) as gallery:
        service = WatchlistService(gallery, audit, lfr_config)
        service.create("retained", name="retained", reason="Wanted", authorised_by="Supt. A. Example",
                       expires_at=parse_expiry("+30"))  # fmt: skip
        entry = WatchlistEntry(
            "Tony_Blair", "Tony Blair", "wanted", "custody image", "Supt. A. Example", blair.embedding
        )
        service.enrol_entries("retained", [entry], officer="Supt. A. Example")
        gallery.watchlists.enrol(
            "retained",
            [
                WatchlistEntry(
                    "Hugo_Chavez",
                    "Hugo Chavez",
                    "wanted",
                    "custody image",
                    "Supt. A. Example",
                    chavez.embedding,
                    expires_at=now - 50,
                )
            ],  # fmt: skip
            now=now - 100,
        )
        gallery.watchlists.catalogue.record_people(
            [PersonRecord("retained", "Hugo_Chavez", "wanted", PersonAttributes(sex="male"), "Supt. A. Example", now)]
        )
        gallery.social.insert(
            [
                social_face(blair.embedding, blair.box, "kept", now + 3600),
                social_face(chavez.embedding, chavez.box, "expired", now - 1),
            ]
        )
        posts = SocialPostRecords(audit.database)
        posts.insert([social_post("kept", now + 3600), social_post("expired", now - 1)])
        assert (gallery.watchlists.count("retained"), gallery.social.count("x"), posts.count()) == (2, 2, 2)
        start = audit_head(lfr_config)

        with GalleryRetention(gallery, audit, lfr_config):
            wait_for(
                lambda: (gallery.watchlists.count("retained"), gallery.social.count("x"), posts.count()) == (1, 1, 1),
                60,
                "the expired entry, face and post purged by the timer",
            )
        assert [e.person_id for e in gallery.watchlists.entries("retained")] == ["Tony_Blair"]
        recorded = [person.person_id for person in gallery.watchlists.catalogue.people("retained")]
        assert recorded == ["Tony_Blair"], "what enrolment recorded about a person goes with their last entry"
        (kept,) = gallery.social.search(blair.embedding[None], platform="x")
        assert [m.face.post_id for m in kept] == ["kept"]
        assert [post.post_id for post in posts.posts()] == ["kept"]

    written = audit_entries(lfr_config, start, intents=True)
    assert {(e.action, e.actor) for e in written} == {(AuditAction.PURGE, RETENTION_ACTOR)}
    outcomes = [e for e in written if e.details["phase"] == "outcome"]
    assert len(outcomes) * 2 == len(written), "every purge has its intent and its outcome"
    deleted = {
        e.subject: sum(o.details.get("entries_deleted", o.details.get("faces_deleted", 0)) for o in outcomes
                       if o.subject == e.subject)
        for e in outcomes
    }  # fmt: skip
    assert deleted == {"watchlist entries": 1, "social_media": 1}
    assert sum(o.details.get("posts_deleted", 0) for o in outcomes) == 1
