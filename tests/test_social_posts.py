"""`lfr social ingest` of a Mastodon archive on a real milvus-lite gallery, real lfw10 faces and the real text
classifier: every post stored with its provenance, text and triage, faces searchable, skips named, all audited; and
the retention purge removes the posts with their faces, text included, from the database files."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.application.social import SocialService
from cluster.audit.actions import AuditAction
from cluster.audit.opening import open_audit_log
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.enrolment.expiry import DAY_S
from cluster.social.records import SocialPostRecords
from tests.mastodon_archive import ACCOUNT, SERVER, boost, create, image, media_path, note, write_archive
from tests.records import opened_gallery
from tests.test_social_cli import AUTHORISED, SEARCH_AUTHORISED
from tests.test_watchlist_cli import audit_entries, audit_head, lfr, lite_lfr_config, photo

pytestmark = pytest.mark.slow

MARKER = "zebracrossing7731"
"""A word that appears in one post's text only, to look for in the database files."""


@pytest.fixture
def lfr_config(tmp_path) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path / "lfr") as config:
        yield config


def protest_archive(folder: Path) -> Path:
    """Five items: a calm post with a face and a place, a boost, an offensive post with a face and a remote image,
    an offensive text-only post, and a heated post with a group photo (three faces)."""
    blair, bush, group = media_path("1", "blair.jpg"), media_path("3", "bush.jpg"), media_path("5", "group.jpg")
    items = [
        create(
            note(
                "1",
                "<p>Lovely turnout at the north gate, thank you all</p>",
                attachment=[image(blair)],
                location={"type": "Place", "name": "Parliament Square"},
            )
        ),
        boost("2"),
        create(
            note(
                "3",
                f"<p>fuck the police, absolute <b>scum</b> {MARKER}</p>",
                published="2025-06-14T10:05:00+01:00",
                attachment=[image("https://cdn.protest.example/files/remote.jpg"), image(bush)],
            )
        ),
        create(note("4", "<p>the mayor can go fuck himself</p>")),
        create(note("5", "<p>we demand an inquiry into what happened at the station</p>", attachment=[image(group)])),
    ]
    media = {blair: photo("Tony_Blair", 3), bush: photo("George_W_Bush", 2), group: photo("Colin_Powell", 10)}
    return write_archive(folder, items, media)


def posts_of(config: LfrConfig, ingest_id: str) -> list:
    with Database(config.database.url) as database:
        return SocialPostRecords(database).posts(ingest_id=ingest_id)


def test_a_mastodon_archive_is_ingested_with_provenance_triage_and_audit(lfr_config, tmp_path):
    folder = protest_archive(tmp_path / "archive")
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "ingest", folder, *AUTHORISED, "--officer", "DS Patel")
    assert ran.code == 1, ran.err
    stored, flagged, kept = ran.out.splitlines()
    assert stored == "stored 5 faces from 4 posts (1 without a face); 2 items skipped"
    assert flagged == ("flagged 2 posts for an officer's review (alt-profanity-check 1.9.1, score >= 0.5): items 3, 4")
    outbox = folder / "outbox.json"
    assert f"lfr: {outbox} item 2: a boost (Announce) of another post" in ran.err
    assert f"lfr: {outbox} item 3: object.attachment.0.url is a remote URL" in ran.err
    assert "download the file and give its local path; skipped" in ran.err

    intent, outcome = audit_entries(lfr_config, start, intents=True)
    assert (outcome.actor, outcome.action, outcome.subject) == ("DS Patel", AuditAction.ENROLMENT, "social_media")
    assert intent.details["format"] == "mastodon" and intent.details["source"] == str(outbox)
    assert intent.details["authorised_by"] == AUTHORISED[1] and intent.details["reason"] == AUTHORISED[3]
    assert (intent.details["triage_model"], intent.details["triage_threshold"]) == ("alt-profanity-check 1.9.1", 0.5)
    assert (outcome.details["flagged"], outcome.details["skipped"], outcome.details["without_face"]) == (
        [3, 4],
        [2, 3],
        [4],
    )
    ingest_id = outcome.details["ingest_id"]
    assert kept.startswith(f"ingest {ingest_id}: kept until")

    posts = {post.post_id.rsplit("/", 1)[1]: post for post in posts_of(lfr_config, ingest_id)}
    assert sorted(posts) == ["1", "3", "4", "5"]
    calm, offensive, text_only, heated = posts["1"], posts["3"], posts["4"], posts["5"]
    assert (calm.platform, calm.author, calm.url, calm.place) == (
        "mastodon",
        "@marcher@protest.example",
        f"{SERVER}/@marcher/1",
        "Parliament Square",
    )
    assert calm.post_id == f"{ACCOUNT}/statuses/1" and calm.posted_at == 1749893520
    assert offensive.text == f"fuck the police, absolute scum {MARKER}", "HTML reduced to text before scoring"
    assert (calm.faces, offensive.faces, text_only.faces, heated.faces) == (1, 1, 0, 3)
    assert (offensive.media, text_only.media) == (1, 0), "the remote attachment was never counted as media"
    assert [p.flagged for p in (calm, offensive, text_only, heated)] == [False, True, True, False]
    assert offensive.triage_score is not None and offensive.triage_score >= 0.5
    assert calm.triage_score is not None and calm.triage_score < 0.5
    assert {(p.triage_model, p.triage_model_version, p.triage_threshold) for p in posts.values()} == {
        ("alt-profanity-check", "1.9.1", 0.5)
    }
    assert {(p.authorised_by, p.ingest_id) for p in posts.values()} == {(AUTHORISED[1], ingest_id)}

    with opened_gallery(lfr_config) as gallery:
        assert gallery.social.count(platform="mastodon") == 5
    found = lfr(lfr_config, "social", "search", photo("Tony_Blair", 10), "--json", *SEARCH_AUTHORISED)
    assert (
        found.code == 0 and f'"url": "{SERVER}/@marcher/1"' in found.out and '"place": "Parliament Square"' in found.out
    )

    wrong = lfr(lfr_config, "social", "ingest", folder, "--format", "jsonl", *AUTHORISED)
    assert wrong.code == 2 and f"{folder}: a folder, not a manifest file" in wrong.err


def database_bytes(config: LfrConfig) -> bytes:
    """The records database's files as they lie on disk: the main file and its write-ahead log."""
    main = Path(config.database.url)
    return b"".join(path.read_bytes() for path in (main, main.with_name(main.name + "-wal")) if path.exists())


def test_the_retention_purge_removes_posts_with_their_faces_and_erases_their_text(lfr_config, tmp_path):
    """Attack: a post's text must not outlive the social retention rule, in the table or in the database files."""
    ran = lfr(lfr_config, "social", "ingest", protest_archive(tmp_path / "archive"), *AUTHORISED)
    assert ran.code == 1, ran.err
    (ingest_id,) = {line.split()[1].rstrip(":") for line in ran.out.splitlines() if line.startswith("ingest ")}
    assert len(posts_of(lfr_config, ingest_id)) == 4 and MARKER.encode() in database_bytes(lfr_config)
    retention_s = lfr_config.gallery.social.retention_days * DAY_S

    audit = open_audit_log(lfr_config.database, lfr_config.audit)
    with opened_gallery(lfr_config) as gallery:
        early = SocialService(gallery, audit, lfr_config, clock=lambda: time.time() + retention_s - 3600)
        assert early.purge_expired(officer="DS Patel").posts == 0, "nothing goes before its time"
        assert gallery.social.count(platform="mastodon") == 5

        start = audit_head(lfr_config)
        late = SocialService(gallery, audit, lfr_config, clock=lambda: time.time() + retention_s + 1)
        purged = late.purge_expired(officer="DS Patel")
        assert (purged.faces, purged.posts, purged.erased) == (5, 4, True)
        assert gallery.social.count(platform="mastodon") == 0

    with Database(lfr_config.database.url) as database:
        assert SocialPostRecords(database).count() == 0
    assert MARKER.encode() not in database_bytes(lfr_config), "the purged text is gone from the files too"
    (outcome,) = audit_entries(lfr_config, start)
    assert (outcome.action, outcome.details["faces_deleted"], outcome.details["posts_deleted"]) == (
        AuditAction.PURGE,
        5,
        4,
    )


def test_deleting_an_ingest_or_a_post_removes_its_records_too(lfr_config, tmp_path):
    ran = lfr(lfr_config, "social", "ingest", protest_archive(tmp_path / "archive"), *AUTHORISED)
    (ingest_id,) = {line.split()[1].rstrip(":") for line in ran.out.splitlines() if line.startswith("ingest ")}
    one = lfr(lfr_config, "social", "delete", "--platform", "mastodon", "--post", f"{ACCOUNT}/statuses/4",
              "--reason", "erasure request 81")  # fmt: skip
    assert (one.code, one.out) == (0, f"deleted 0 faces and 1 post of mastodon post {ACCOUNT}/statuses/4\n")
    assert len(posts_of(lfr_config, ingest_id)) == 3
    rest = lfr(lfr_config, "social", "delete", "--ingest", ingest_id, "--reason", "ingest withdrawn")
    assert (rest.code, rest.out) == (0, f"deleted 5 faces and 3 posts of ingest {ingest_id}\n")
    assert posts_of(lfr_config, ingest_id) == []
