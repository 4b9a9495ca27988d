"""`lfr social ingest` and `lfr social search` on a real milvus-lite gallery with real lfw10 photos."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.audit.actions import AuditAction
from cluster.config import LfrConfig
from cluster.gallery.gallery import Gallery
from cluster.retro.social_manifest import read_manifest
from tests.test_watchlist_cli import (
    THRESHOLD,
    audit_entries,
    audit_head,
    holds_no_vector,
    lfr,
    lite_lfr_config,
    photo,
    street_frame,
)

pytestmark = pytest.mark.slow

AUTHORISED = ("--authorised-by", "Supt. A. Example", "--reason", "Operation Bramble: who was in the square")


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        yield config


def post(image: Path | str, platform: str, post_id: str, posted_at: str = "2025-06-14T10:32:00+01:00", **extra) -> str:
    fields = {
        "image": str(image),
        "platform": platform,
        "post_id": post_id,
        "url": f"https://example.org/{platform}/{post_id}",
        "posted_at": posted_at,
        "place": "Trafalgar Square",
        **extra,
    }
    return json.dumps(fields)


@pytest.fixture(scope="module")
def ingested(lfr_config, tmp_path_factory) -> tuple[Path, int, str]:
    """A manifest of ten lines (one blank, four bad, one image without a face) ingested once.

    Returns the manifest, the audit log's head before the ingest, and what the ingest wrote on stderr.
    """
    folder = tmp_path_factory.mktemp("posts")
    street_frame(folder / "street.png")
    lines = [
        post(photo("Tony_Blair", 3), "x", "1001"),
        post(photo("George_W_Bush", 2), "instagram", "p-2002"),
        '{"image": "broken.jpg", "platform": "x"',
        json.dumps(
            {"image": str(photo("Hugo_Chavez", 1)), "platform": "x", "post_id": "1004", "posted_at": "2025-06-14Z"}
        ),
        "",
        post(photo("Colin_Powell", 10), "x", "1005", place=""),
        post(folder / "missing.jpg", "x", "1006"),
        post(photo("Hugo_Chavez", 2), "x", "1007", posted_at="2025-06-14T10:00:00"),
        post(photo("Tony_Blair", 7), "facebook", "fb-3003", posted_at="2025-06-15T08:00:00Z", place="Whitehall"),
        post("street.png", "x", "1010"),
    ]
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "ingest", manifest, *AUTHORISED, "--officer", "DS Patel")
    assert ran.code == 1, ran.err
    stored, kept = ran.out.splitlines()
    assert stored == "stored 6 faces from 5 posts (1 without a face); 4 lines skipped"
    assert kept.startswith("ingest ") and kept.endswith(", then purged")
    return manifest, start, ran.err


def test_ingest_stores_every_face_with_provenance_and_reports_bad_lines(lfr_config, ingested):
    manifest, start, err = ingested
    assert f"{manifest} line 3: not a JSON object" in err
    assert f"{manifest} line 4: url: Field required" in err
    assert f"{manifest} line 7:" in err and "missing.jpg: no such file" in err
    assert f"{manifest} line 8: posted_at: Input should have timezone info" in err
    assert "line 1:" not in err and "line 10:" not in err
    with Gallery.open(lfr_config.gallery) as gallery:
        assert gallery.social.count() == 6, "Blair, Bush, Blair again and the three faces of Colin_Powell_0010"
        assert gallery.social.count(platform="facebook") == 1
    ingest, *_ = audit_entries(lfr_config, start)
    assert (ingest.actor, ingest.action, ingest.subject) == ("DS Patel", AuditAction.ENROLMENT, "social_media")
    assert ingest.details["faces"] == 6 and ingest.details["posts"] == 5
    assert ingest.details["lines_skipped"] == [3, 4, 7, 8] and ingest.details["lines_without_face"] == [10]


def test_search_finds_the_other_posts_of_the_same_person(lfr_config, ingested):
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "search", photo("Tony_Blair", 10), "--json", "--officer", "DS Patel")
    assert ran.code == 0, ran.err
    found = json.loads(ran.out)
    assert found["min_similarity"] == THRESHOLD
    matches = found["matches"]
    assert sorted(m["post_id"] for m in matches) == ["1001", "fb-3003"], "Blair's two posts and nobody else's"
    assert [m["rank"] for m in matches] == [1, 2] and matches[0]["similarity"] >= matches[1]["similarity"]
    by_post = {m["post_id"]: m for m in matches}
    provenance = ("platform", "url", "posted_at", "place", "image_path")
    assert {key: by_post["1001"][key] for key in provenance} == {
        "platform": "x",
        "url": "https://example.org/x/1001",
        "posted_at": "2025-06-14T09:32:00+00:00",
        "place": "Trafalgar Square",
        "image_path": str(photo("Tony_Blair", 3)),
    }
    assert len(by_post["1001"]["box"]) == 4 and by_post["1001"]["face_id"]
    assert by_post["fb-3003"]["place"] == "Whitehall" and by_post["fb-3003"]["posted_at"] == "2025-06-15T08:00:00+00:00"
    assert all(m["similarity"] >= THRESHOLD for m in matches)
    (entry,) = audit_entries(lfr_config, start)
    assert (entry.action, entry.subject, entry.details["hits"]) == (AuditAction.SEARCH, "social_media", 2)
    assert holds_no_vector(dict(entry.details))

    text = lfr(lfr_config, "social", "search", photo("Tony_Blair", 10))
    assert text.code == 0 and text.out.startswith("2 appearances of face 0 of")
    assert "x post 1001  2025-06-14T09:32:00+00:00  Trafalgar Square  https://example.org/x/1001" in text.out


def test_a_group_photo_is_searched_only_with_a_chosen_face(lfr_config, ingested):
    group = photo("Colin_Powell", 10)
    refused = lfr(lfr_config, "social", "search", group)
    assert refused.code == 1 and f"{group}: 3 faces found" in refused.err and refused.out == ""
    chosen = json.loads(lfr(lfr_config, "social", "search", group, "--face", "0", "--json", "--top-k", "1").out)
    (match,) = chosen["matches"]
    assert (match["post_id"], match["image_path"]) == ("1005", str(group))
    assert match["similarity"] == pytest.approx(1.0, abs=1e-3)


def test_bad_manifest_and_probe_are_refused_clearly(lfr_config, tmp_path):
    missing = lfr(lfr_config, "social", "ingest", tmp_path / "nope.jsonl", *AUTHORISED)
    assert missing.code == 2 and "nope.jsonl: no such manifest file" in missing.err
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not UTF-8 text" in lfr(lfr_config, "social", "ingest", binary, *AUTHORISED).err
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(photo("Tony_Blair", 1).read_bytes()[:500])
    probe = lfr(lfr_config, "social", "search", corrupt)
    assert probe.code == 1 and f"{corrupt}: the image data is corrupt or truncated" in probe.err


def test_manifest_paths_are_relative_to_the_manifest(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(post("photos/a.jpg", "x", "1") + "\n" + post("/abs/b.jpg", "x", "2") + "\n")
    posts = read_manifest(manifest).posts
    assert [p.image_path for p in posts] == [tmp_path.resolve() / "photos" / "a.jpg", Path("/abs/b.jpg")]
    assert posts[0].posted_at == 1749893520
