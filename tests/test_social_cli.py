"""`lfr social ingest` and `lfr social search` on a real milvus-lite gallery with real lfw10 photos."""

import getpass
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from cluster.audit.actions import AuditAction
from cluster.audit.intents import unfinished_intents
from cluster.audit.log import AuditLog
from cluster.cases.model import Case, CaseKind, ItemState, MatchKind
from cluster.cases.store import CaseStore
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.gallery.errors import GalleryUnavailableError
from cluster.gallery.records import SocialFace
from cluster.gallery.social import SocialFaces
from cluster.social.ingest import POSTS_PER_BATCH
from cluster.social.manifest import read_manifest
from cluster.tracking.crops import face_crop_jpeg
from cluster.vision.image_io import load_image
from tests.audit_key import TEST_SEALER
from tests.records import opened_gallery
from tests.test_watchlist_cli import (
    THRESHOLD,
    Ran,
    audit_entries,
    audit_head,
    holds_no_vector,
    lfr,
    lite_lfr_config,
    photo,
    street_frame,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLI_USER = f"cli:{getpass.getuser()}"
AUTHORISED = ("--authorised-by", "Supt. A. Example", "--reason", "Operation Bramble: who was in the square")
SEARCHER = "DS Patel"
SEARCH_REASON = "Operation Bramble: where else the suspect was seen, ref CAD 7781"
SEARCH_AUTHORISED = ("--officer", SEARCHER, "--reason", SEARCH_REASON)
"""The named officer and the reason every `lfr social search` needs: its matches become a case."""


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
    stored, flagged, kept = ran.out.splitlines()
    assert stored == "stored 6 faces from 5 posts (1 without a face); 4 lines skipped"
    assert flagged == "flagged 0 posts for an officer's review (alt-profanity-check 1.9.1, score >= 0.5)"
    assert kept.startswith("ingest ") and kept.endswith(", then purged")
    return manifest, start, ran.err


def test_ingest_stores_every_face_with_provenance_and_reports_bad_lines(lfr_config, ingested):
    manifest, start, err = ingested
    assert f"{manifest} line 3: not a JSON object" in err
    assert f"{manifest} line 4: url: Field required" in err
    assert f"{manifest} line 7:" in err and "missing.jpg: no such file" in err
    assert f"{manifest} line 8: posted_at: Input should have timezone info" in err
    assert "line 1:" not in err and "line 10:" not in err
    with opened_gallery(lfr_config) as gallery:
        assert gallery.social.count() == 6, "Blair, Bush, Blair again and the three faces of Colin_Powell_0010"
        assert gallery.social.count(platform="facebook") == 1
    ingest, *_ = audit_entries(lfr_config, start)
    assert (ingest.actor, ingest.action, ingest.subject) == ("DS Patel", AuditAction.ENROLMENT, "social_media")
    assert ingest.details["faces"] == 6 and ingest.details["posts"] == 5
    assert ingest.details["skipped"] == [3, 4, 7, 8] and ingest.details["without_face"] == [10]
    assert ingest.details["unit"] == "line" and ingest.details["flagged"] == []


def test_search_finds_the_other_posts_of_the_same_person(lfr_config, ingested):
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "search", photo("Tony_Blair", 10), "--json", *SEARCH_AUTHORISED)
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
    opened, entry = audit_entries(lfr_config, start)
    assert (entry.action, entry.subject, entry.details["hits"]) == (AuditAction.SEARCH, "social_media", 2)
    assert (entry.actor, entry.details["reason"], entry.details["case_id"]) == (
        SEARCHER,
        SEARCH_REASON,
        found["case_id"],
    )
    assert (opened.actor, opened.action, opened.subject) == (
        SEARCHER,
        AuditAction.CASE_OPENED,
        f"case:{found['case_id']}",
    )
    assert holds_no_vector(dict(entry.details)) and holds_no_vector(dict(opened.details))

    case = the_case(lfr_config, found["case_id"])
    assert (case.kind, case.authorisation.officer, case.authorisation.reason) == (
        CaseKind.SOCIAL,
        SEARCHER,
        SEARCH_REASON,
    )
    assert case.provenance.query == f"face 0 of {photo('Tony_Blair', 10)}" and case.provenance.threshold == THRESHOLD
    assert case.provenance.query_digest == hashlib.sha256(photo("Tony_Blair", 10).read_bytes()).hexdigest()
    assert [(item.person_id, item.label, item.match_id) for item in case.items] == [
        (f"{m['platform']}:{m['post_id']}", m["url"], m["face_id"]) for m in matches
    ]
    for item, match in zip(case.items, matches, strict=True):
        assert (item.match_kind, item.state, item.has_crop) == (MatchKind.SOCIAL_FACE, ItemState.PENDING, True)
        assert item.score == pytest.approx(match["similarity"], abs=1e-4) and item.source == match["image_path"]
        post_face = face_crop_jpeg(load_image(item.source), np.asarray(item.box))
        assert the_crop(lfr_config, case.case_id, item.number) == post_face, "the crop is the post's face"

    text = lfr(lfr_config, "social", "search", photo("Tony_Blair", 10), *SEARCH_AUTHORISED)
    assert text.code == 0 and text.out.startswith("2 appearances of face 0 of")
    assert "2 candidates for an officer to confirm or reject in the control room" in text.out
    assert "x post 1001  2025-06-14T09:32:00+00:00  Trafalgar Square  https://example.org/x/1001" in text.out


@pytest.mark.parametrize(
    ("authorisation", "message"),
    [
        ((), "pass --officer NAME (the officer who runs the search and answers for it"),
        (("--officer", SEARCHER), "pass --reason TEXT"),
        (("--reason", SEARCH_REASON), "pass --officer NAME"),
        (("--officer", "system:retention", "--reason", SEARCH_REASON), "is the system; name the person"),
    ],
)
def test_a_search_without_its_named_officer_and_reason_searches_nothing(lfr_config, authorisation, message):
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "search", photo("Tony_Blair", 10), *authorisation)
    assert ran.code == 2 and message in ran.err and ran.out == "", ran.err
    assert audit_entries(lfr_config, start, intents=True) == [], "nothing was searched, so nothing is audited"


def the_case(config: LfrConfig, case_id: str) -> Case:
    with Database(config.database.url) as database:
        return CaseStore(database, AuditLog(database, TEST_SEALER, create=False)).get(case_id)


def the_crop(config: LfrConfig, case_id: str, number: int) -> bytes:
    with Database(config.database.url) as database:
        return CaseStore(database, AuditLog(database, TEST_SEALER, create=False)).crop(case_id, number)


def test_a_group_photo_is_searched_only_with_a_chosen_face(lfr_config, ingested):
    group = photo("Colin_Powell", 10)
    refused = lfr(lfr_config, "social", "search", group, *SEARCH_AUTHORISED)
    assert refused.code == 1 and f"{group}: 3 faces found" in refused.err and refused.out == ""
    chosen = json.loads(
        lfr(lfr_config, "social", "search", group, "--face", "0", "--json", "--top-k", "1", *SEARCH_AUTHORISED).out
    )
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
    probe = lfr(lfr_config, "social", "search", corrupt, *SEARCH_AUTHORISED)
    assert probe.code == 1 and f"{corrupt}: the image data is corrupt or truncated" in probe.err


def test_manifest_paths_are_relative_to_the_manifest(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(post("photos/a.jpg", "x", "1") + "\n" + post("/abs/b.jpg", "x", "2") + "\n")
    posts = read_manifest(manifest).posts
    assert [p.media for p in posts] == [(tmp_path.resolve() / "photos" / "a.jpg",), (Path("/abs/b.jpg"),)]
    assert posts[0].posted_at == 1749893520


def lfr_with_audit(config: LfrConfig, *argv: object) -> Ran:
    """A command of a group the shared `lfr` helper does not register (`lfr audit`), through `lfr`'s own parser."""
    args = build_parser().parse_args([str(arg) for arg in argv])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args, config)
    return Ran(code, out.getvalue(), err.getvalue())


def posts_manifest(folder: Path, platform: str, people: list[tuple[str, int]]) -> Path:
    """A manifest with one post per (person, photo number), post ids `<platform>-<n>`."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / f"{platform}.jsonl"
    lines = [post(photo(person, number), platform, f"{platform}-{n}") for n, (person, number) in enumerate(people)]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def faces_of(config: LfrConfig, platform: str) -> list:
    with opened_gallery(config) as gallery:
        ids = [m.face.face_id for m in gallery.social.search(np.zeros((1, 128), np.float32) + 128**-0.5, top_k=1024,
                                                            platform=platform)[0]]  # fmt: skip
        return gallery.social.get(ids)


def test_an_ingest_needs_an_authorisation_and_its_faces_carry_it_with_their_expiry(lfr_config, tmp_path, capsys):
    manifest = posts_manifest(tmp_path, "authorised", [("Tony_Blair", 4)])
    with pytest.raises(SystemExit):
        lfr(lfr_config, "social", "ingest", manifest, "--reason", "no officer named")
    assert "the following arguments are required: --authorised-by" in capsys.readouterr().err
    blank = lfr(lfr_config, "social", "ingest", manifest, "--authorised-by", " ", "--reason", "blank officer")
    assert blank.code == 2 and "the authorising officer (--authorised-by) must not be empty" in blank.err
    assert faces_of(lfr_config, "authorised") == [], "a refused ingest stored nothing"

    start = audit_head(lfr_config)
    before = time.time()
    ran = lfr(lfr_config, "social", "ingest", manifest, *AUTHORISED, "--officer", "DS Patel")
    assert ran.code == 0, ran.err
    (face,) = faces_of(lfr_config, "authorised")
    intent, outcome = audit_entries(lfr_config, start, intents=True)
    assert intent.details["phase"] == "intent" and intent.details["authorised_by"] == "Supt. A. Example"
    assert intent.details["reason"] == AUTHORISED[3]
    assert (face.authorised_by, face.ingest_id) == ("Supt. A. Example", intent.details["operation"])
    days = LfrConfig().gallery.social.retention_days
    assert int(before) + days * 86_400 <= face.expires_at <= time.time() + days * 86_400
    assert outcome.details["ingest_id"] == face.ingest_id and outcome.details["result"] == "done"
    assert f"ingest {face.ingest_id}: kept until" in ran.out


def test_faces_are_deleted_by_post_and_expired_ones_purged_and_unsearchable(lfr_config, tmp_path, face_pipeline):
    manifest = posts_manifest(tmp_path, "deleting", [("George_W_Bush", 5), ("Hugo_Chavez", 3)])
    assert lfr(lfr_config, "social", "ingest", manifest, *AUTHORISED).code == 0
    start = audit_head(lfr_config)
    deleted = lfr(lfr_config, "social", "delete", "--platform", "deleting", "--post", "deleting-0",
                  "--reason", "erasure request 77", "--officer", "DS Patel")  # fmt: skip
    assert (deleted.code, deleted.out) == (0, "deleted 1 face and 1 post of deleting post deleting-0\n")
    assert [f.post_id for f in faces_of(lfr_config, "deleting")] == ["deleting-1"]
    intent, outcome = audit_entries(lfr_config, start, intents=True)
    assert (outcome.action, outcome.subject, outcome.actor) == (AuditAction.PURGE, "social_media", "DS Patel")
    assert intent.details["reason"] == "erasure request 77" and outcome.details["faces_deleted"] == 1
    again = lfr(lfr_config, "social", "delete", "--platform", "deleting", "--post", "deleting-0", "--reason", "twice")
    assert again.code == 1 and again.out == "deleted 0 faces and 0 posts of deleting post deleting-0\n"
    vague = lfr(lfr_config, "social", "delete", "--post", "deleting-1", "--reason", "no platform")
    assert vague.code == 2 and "--platform P --post POST_ID, or --ingest INGEST_ID" in vague.err

    (faces,) = face_pipeline.process([load_image(photo("Vladimir_Putin", 1))])
    with opened_gallery(lfr_config) as gallery:
        gallery.social.insert(
            [
                SocialFace(platform="expiring", post_id="old-1", url="https://example.org/x/old-1", captured_at=1,
                           place="", image_path="old-1.jpg", box=faces[0].box, authorised_by="Supt. A. Example",
                           ingest_id="ingest-expired", expires_at=int(time.time()) - 60, embedding=faces[0].embedding)
            ]
        )  # fmt: skip
        assert gallery.social.count("expiring") == 1
        (found,) = gallery.social.search(faces[0].embedding[None], platform="expiring")
        assert found == [], "an expired face is never searched"
    start = audit_head(lfr_config)
    purged = lfr(lfr_config, "social", "purge")
    assert (purged.code, purged.out) == (0, "purged 1 expired face and 0 posts\n")
    with opened_gallery(lfr_config) as gallery:
        assert gallery.social.count("expiring") == 0 and gallery.social.count("deleting") == 1
    (outcome,) = audit_entries(lfr_config, start)
    assert (outcome.action, outcome.actor, outcome.details["faces_deleted"]) == (AuditAction.PURGE, CLI_USER, 1)


def crash_after_first_insert(config: LfrConfig, manifest: Path, folder: Path) -> subprocess.CompletedProcess:
    """`lfr social ingest` in a process of its own, killed (os._exit) as soon as its first batch is stored."""
    config_path = folder / "lfr.yaml"
    config_path.write_text(json.dumps(config.model_dump(mode="json")))
    script = (
        "import os, sys; from cluster.gallery.social import SocialFaces; from cluster.cli.main import main;"
        " insert = SocialFaces.insert;"
        " SocialFaces.insert = lambda self, faces: (insert(self, faces), os._exit(9));"
        " sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", script, "--config", str(config_path), "social", "ingest", str(manifest), *AUTHORISED],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_crash_mid_ingest_leaves_its_intent_on_record_and_its_faces_deletable(lfr_config, tmp_path):
    people = [("Tony_Blair", n) for n in range(1, 10)] + [("Colin_Powell", 1)]
    manifest = posts_manifest(tmp_path, "crashing", people)
    assert len(people) > POSTS_PER_BATCH, "a second batch is never stored"
    start = audit_head(lfr_config)
    crashed = crash_after_first_insert(lfr_config, manifest, tmp_path)
    assert crashed.returncode == 9, crashed.stderr
    stored = faces_of(lfr_config, "crashing")
    assert 0 < len(stored) and {f.post_id for f in stored} <= {f"crashing-{n}" for n in range(POSTS_PER_BATCH)}

    (intent,) = audit_entries(lfr_config, start, intents=True)
    assert (intent.action, intent.details["phase"], intent.details["source"]) == (
        AuditAction.ENROLMENT,
        "intent",
        str(manifest),
    )
    log = AuditLog(Database(lfr_config.database.url), create=False)
    assert intent in unfinished_intents(log)
    listed = lfr_with_audit(lfr_config, "audit", "unfinished", "--db", lfr_config.database.url)
    assert listed.code == 1 and intent.details["operation"] in listed.out
    assert {f.ingest_id for f in stored} == {intent.details["operation"]}, "the faces name the unfinished ingest"

    cleanup = lfr(lfr_config, "social", "delete", "--ingest", intent.details["operation"], "--reason",
                  "ingest killed part-way")  # fmt: skip
    assert cleanup.code == 0 and cleanup.out.startswith(f"deleted {len(stored)} face")
    assert faces_of(lfr_config, "crashing") == []


def test_an_ingest_stopped_by_a_fault_records_what_it_left_stored(lfr_config, tmp_path, monkeypatch):
    """Fault injected on purpose: the gallery fails on the second batch's insert."""
    people = [("George_W_Bush", n) for n in range(1, 11)]
    manifest = posts_manifest(tmp_path, "faulty", people)
    insert = SocialFaces.insert
    calls: list[int] = []

    def second_insert_fails(self, faces):
        calls.append(len(faces))
        if len(calls) == 2:
            raise GalleryUnavailableError("Milvus stopped answering (injected)")
        return insert(self, faces)

    monkeypatch.setattr(SocialFaces, "insert", second_insert_fails)
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "ingest", manifest, *AUTHORISED)
    assert ran.code == 2 and "Milvus stopped answering" in ran.err
    intent, outcome = audit_entries(lfr_config, start, intents=True)
    assert outcome.details["operation"] == intent.details["operation"]
    assert (outcome.details["result"], outcome.details["faces_stored"]) == ("failed", calls[0])
    assert "Milvus stopped answering" in outcome.details["error"]
    assert len(faces_of(lfr_config, "faulty")) == calls[0]


def test_a_post_whose_image_has_gone_is_still_a_candidate_without_a_crop(lfr_config, tmp_path):
    """The image of a post may be moved or deleted after its faces were stored: the search still shows the post, and
    its candidate carries no crop (the officer follows the post's URL) rather than the search failing."""
    moved = tmp_path / "moved.jpg"
    moved.write_bytes(photo("Ariel_Sharon", 1).read_bytes())
    manifest = tmp_path / "moved.jsonl"
    manifest.write_text(post(moved, "moved", "m-1") + "\n", encoding="utf-8")
    assert lfr(lfr_config, "social", "ingest", manifest, *AUTHORISED).code == 0
    moved.unlink()

    ran = lfr(lfr_config, "social", "search", photo("Ariel_Sharon", 2), "--json", *SEARCH_AUTHORISED)
    assert ran.code == 0, ran.err
    found = json.loads(ran.out)
    assert [m["post_id"] for m in found["matches"]] == ["m-1"]
    (item,) = the_case(lfr_config, found["case_id"]).items
    assert (item.person_id, item.source, item.has_crop) == ("moved:m-1", str(moved), False)
    assert item.label == "https://example.org/moved/m-1"
