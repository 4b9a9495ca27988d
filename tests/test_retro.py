"""`lfr retro` on a real milvus-lite gallery: real lfw10 photos, and a real H.264 crowd video with known identities."""

import base64
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cases.model import CaseKind, ItemState, MatchKind
from cluster.cases.store import CaseStore
from cluster.config import LfrConfig
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.crowd.truth import CrowdTruth, resolve_asset
from cluster.database.engine import Database
from cluster.gallery.schema import VECTOR_FIELD, WATCHLIST_COLLECTION, WATCHLIST_FIELDS
from cluster.trace_scan import embeddings_like
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import models_name
from tests.audit_key import TEST_SEALER
from tests.records import opened_gallery
from tests.test_watchlist_cli import (
    audit_entries,
    audit_head,
    create,
    holds_no_vector,
    lfr,
    lite_lfr_config,
    photo,
)

pytestmark = pytest.mark.slow

OFFICER = "DS Patel"
REASON = "Op Falcon: robbery at Oxford Circus, ref CAD 4412"
AUTHORISED = ("--officer", OFFICER, "--reason", REASON)
"""The named officer and the reason every `lfr retro` needs."""
MODEL_NAMES = models_name(LfrConfig().face_models)
ENROLLED = {"George_W_Bush": "George W Bush", "Tony_Blair": "Tony Blair"}
FOOTAGE = [
    photo("George_W_Bush", 2),
    photo("George_W_Bush", 9),
    photo("Tony_Blair", 3),
    photo("Tony_Blair", 7),
    photo("Hugo_Chavez", 1),
    photo("Vladimir_Putin", 7),
    photo("Colin_Powell", 10),
    photo("Jacques_Chirac", 2),
]
"""Two photos of each enrolled person (Bush_0009 with a bystander), four of strangers (Putin_0007 holds five
faces, Powell_0010 three): eight photos, fifteen faces."""
EXPECTED_MATCHES = {
    ("George_W_Bush_0002.jpg", "George_W_Bush"),
    ("George_W_Bush_0009.jpg", "George_W_Bush"),
    ("Tony_Blair_0003.jpg", "Tony_Blair"),
    ("Tony_Blair_0007.jpg", "Tony_Blair"),
}
CROWD = CrowdSpec(cameras=1, seconds=4, fps=10, width=640, height=360, seed=1, people=4, watchlist_fraction=0.5)
"""Four real people walk past one camera for 4 s; two of them are on the watchlist."""


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        create(config, "lfw")
        for person, label in ENROLLED.items():
            added = lfr(config, "watchlist", "add", "lfw", person, photo(person, 1), "--label", label)
            assert added.code == 0, added.err
        yield config


def the_case(config: LfrConfig, case_id: str):
    """The case a search opened, read from the records database as the control room reads it."""
    database = Database(config.database.url)
    return CaseStore(database, AuditLog(database, TEST_SEALER, create=False)).get(case_id)


def box_iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# The privacy scanner reads every stored byte as float32; bit patterns of NaN among them warn when cast.
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_retro_finds_the_enrolled_people_in_real_photos_and_nobody_else(lfr_config, face_pipeline, tmp_path):
    footage = tmp_path / "scene"
    footage.mkdir()
    for path in FOOTAGE:
        shutil.copy(path, footage / path.name)
    start = audit_head(lfr_config)

    ran = lfr(lfr_config, "retro", footage, "--watchlist", "lfw", "--out", tmp_path / "out", *AUTHORISED)
    assert ran.code == 0, ran.err
    assert re.search(
        r"searched 8 of 8 sources against lfw@v1 \(2 entries\) at threshold \d+\.\d+ on the fused score .* calibrated"
        r" for FPIR 0.00017 \(1 in 6,000 passers-by\) with 2 entries; expected TPIR 0\.\d+: 15 faces, 4 matched,"
        r" 11 matched nobody",
        ran.out,
    ), ran.out

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["watchlist"]["version"] == "lfw@v1" and report["watchlist"]["entries"] == 2
    calibration = report["calibration"]
    assert (calibration["list_size"], calibration["target_fpir"]) == (2, LfrConfig().matching.target_fpir)
    threshold = report["threshold"]
    assert threshold == pytest.approx(calibration["threshold"], abs=1e-6)
    assert (report["model_name"], report["officer"]) == (MODEL_NAMES, "DS Patel")
    matches = report["matches"]
    assert {(Path(m["source"]).name, m["person_id"]) for m in matches} == EXPECTED_MATCHES
    assert len(matches) == len(EXPECTED_MATCHES), "one match per photo: the bystander in Bush_0009 matched nobody"
    for match in matches:
        assert match["similarity"] >= threshold and match["threshold"] == threshold
        assert set(match["model_scores"]) == set(LfrConfig().face_models.models)
        assert (match["watchlist_version"], match["model_name"]) == ("lfw@v1", MODEL_NAMES)
        assert match["label"] == ENROLLED[match["person_id"]] and match["frame_time_s"] is None
        x1, y1, x2, y2 = match["box"]
        assert x1 < 125 < x2 and y1 < 125 < y2, "LFW centres its person: the match is the central face"

    assert (report["faces_seen"], report["faces_unmatched"]) == (15, 11)
    assert sum(s["faces"] for s in report["sources"]) == 15
    assert all(set(s) == {"path", "kind", "frames_searched", "faces", "matches", "error"} for s in report["sources"])
    text = json.dumps(report)
    assert text.count('"box"') == len(matches) and "embedding" not in text, "a face that matched nobody left data"

    html = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"https?://|src=\"(?!data:)|href=|<script|<link|url\(", html), "an external reference"
    crops = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(crops) == len(matches) == html.count("<img")
    for crop in crops:
        with Image.open(io.BytesIO(base64.b64decode(crop))) as image:
            assert image.format == "JPEG" and min(image.size) >= 60
    assert "George W Bush" in html and "Tony Blair" in html and "lfw@v1" in html

    frozen, opened, search = audit_entries(lfr_config, start)
    assert (frozen.action, frozen.details["change"], frozen.details["version"]) == (
        AuditAction.WATCHLIST_CHANGE,
        "frozen",
        "lfw@v1",
    ), "a watchlist without a frozen version is frozen for the search, and that is audited"
    assert (search.actor, search.action, search.subject) == (OFFICER, AuditAction.SEARCH, "watchlist:lfw@v1")
    assert search.details["matches"] == 4 and search.details["faces_seen"] == 15
    case = the_case(lfr_config, search.details["case_id"])
    assert ran.out.endswith(
        f"case {case.case_id}: 4 candidates for an officer to confirm or reject in the control room\n"
    )
    assert (opened.actor, opened.action, opened.subject) == (OFFICER, AuditAction.CASE_OPENED, f"case:{case.case_id}")
    assert (case.kind, case.authorisation.officer, case.authorisation.reason) == (
        CaseKind.RETROSPECTIVE,
        OFFICER,
        REASON,
    )
    assert (case.provenance.query_digest, case.provenance.faces_seen) == (report["watchlist"]["digest"], 15)
    assert set(case.provenance.reports) == {
        str(tmp_path / "out" / "report.json"),
        str(tmp_path / "out" / "report.html"),
    }
    assert {(Path(item.source).name, item.person_id) for item in case.items} == EXPECTED_MATCHES
    for item in case.items:
        assert (item.state, item.match_kind, item.has_crop) == (ItemState.PENDING, MatchKind.WATCHLIST_ENTRY, True)
        assert item.score >= threshold and item.threshold == threshold
    assert search.details["persons_matched"]["first"] == ["George_W_Bush", "Tony_Blair"]
    assert search.details["persons_matched"]["count"] == 2 and search.details["result"] == "done"
    assert holds_no_vector(dict(search.details))

    strangers = [photo for photo in FOOTAGE if photo.name.split("_0")[0] not in ENROLLED]
    faces = [face.embedding for found in face_pipeline.process([load_image(p) for p in strangers]) for face in found]
    assert len(faces) == 10
    stored = Path(lfr_config.database.url).parent
    for folder in (tmp_path / "out", stored):
        assert embeddings_like(folder, np.stack(faces), min_similarity=0.99) == [], "a stranger's face was kept"


def test_retro_finds_watchlist_people_in_a_crowd_video_at_the_right_times(lfr_config, tmp_path):
    truth = make_crowd(CROWD, tmp_path / "crowd")
    create(lfr_config, "crowd")
    for person in truth.watchlist:
        photos = [resolve_asset(name) for name in person.enrolment_photos]
        added = lfr(lfr_config, "watchlist", "add", "crowd", person.id, *photos)
        assert added.code == 0, added.err
    frozen = lfr(lfr_config, "watchlist", "freeze", "crowd")
    assert frozen.out == "crowd@v1\n"
    later = lfr(lfr_config, "watchlist", "add", "crowd", "Hugo_Chavez", photo("Hugo_Chavez", 1))
    assert later.code == 0, later.err

    video = tmp_path / "crowd" / "cam0.mp4"
    ran = lfr(
        lfr_config, "retro", video, "--watchlist", "crowd", "--version", "1", "--out", tmp_path / "out", *AUTHORISED
    )
    assert ran.code == 0, ran.err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (source,) = report["sources"]
    assert (source["kind"], source["frames_searched"], source["error"]) == ("video", 8, None), "4 s at 2 fps"
    assert report["watchlist"]["version"] == "crowd@v1"
    assert_matches_are_true(truth, report["matches"])
    assert {m["person_id"] for m in report["matches"]} == {p.id for p in truth.watchlist}
    assert "Hugo_Chavez" not in {m["person_id"] for m in report["matches"]}, "enrolled after the version searched"


def assert_matches_are_true(truth: CrowdTruth, matches: list[dict]) -> None:
    """Every match lies on the matched person's face in that very frame, at that frame's time."""
    faces = truth.faces_by_frame("cam0")
    assert matches
    for match in matches:
        assert match["frame_time_s"] == pytest.approx(match["frame_index"] / CROWD.fps, abs=1e-3)
        there = [
            face.box for appearance, face in faces[match["frame_index"]] if appearance.person == match["person_id"]
        ]
        assert there and box_iou(match["box"], there[0]) > 0.3, f"{match['person_id']} is not where it was matched"


def test_unreadable_sources_are_reported_and_the_rest_searched(lfr_config, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(photo("Tony_Blair", 4).read_bytes()[:400])
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    good = photo("Tony_Blair", 3)
    ran = lfr(
        lfr_config, "retro", corrupt, not_video, good, "--watchlist", "lfw", "--out", tmp_path / "out", *AUTHORISED
    )
    assert ran.code == 1
    assert f"not searched: {corrupt}: the image data is corrupt or truncated" in ran.err
    assert f"not searched: {not_video}: not a playable video" in ran.err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["error"] is not None for s in report["sources"]] == [True, True, False]
    assert [m["person_id"] for m in report["matches"]] == ["Tony_Blair"]
    assert "not a playable video" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--watchlist", "nowhere"), "no watchlist 'nowhere'"),
        (("--watchlist", "lfw", "--version", "9"), "watchlist 'lfw' has no version 9"),
        (("--watchlist", "lfw", "--version", "other@v1"), "is a version of 'other'"),
        (("--watchlist", "lfw", "--fps", "0"), "--fps must be above 0"),
    ],
)
def test_bad_requests_search_nothing(lfr_config, tmp_path, options, message):
    ran = lfr(lfr_config, "retro", photo("Tony_Blair", 3), *options, "--out", tmp_path / "out", *AUTHORISED)
    assert ran.code == 2 and message in ran.err, ran.err
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize(
    ("authorisation", "message"),
    [
        (("--reason", REASON), "pass --officer NAME"),
        (("--officer", OFFICER), "pass --reason TEXT"),
        (("--officer", "  ", "--reason", " "), "pass --officer NAME (the officer who runs the search"),
    ],
)
def test_a_search_without_its_named_officer_and_reason_searches_nothing(lfr_config, tmp_path, authorisation, message):
    head = audit_head(lfr_config)
    ran = lfr(
        lfr_config, "retro", photo("Tony_Blair", 3), "--watchlist", "lfw", "--out", tmp_path / "out", *authorisation
    )
    assert ran.code == 2 and message in ran.err, ran.err
    assert "needs a named officer and a reason" in ran.err
    assert not (tmp_path / "out").exists()
    assert audit_entries(lfr_config, head, intents=True) == [], "nothing was searched, so nothing is audited"


def test_a_version_changed_in_milvus_after_freezing_is_not_searched(lfr_config, tmp_path):
    """An embedding replaced straight in Milvus after freezing: the search refuses before reading any footage."""
    create(lfr_config, "tampered")
    added = lfr(lfr_config, "watchlist", "add", "tampered", "Tony_Blair", photo("Tony_Blair", 1))
    assert added.code == 0, added.err
    assert lfr(lfr_config, "watchlist", "freeze", "tampered").code == 0
    with opened_gallery(lfr_config) as gallery:
        (entry,) = gallery.watchlists.entries("tampered")
        fields = [*WATCHLIST_FIELDS, VECTOR_FIELD]
        (row,) = gallery.connection.run(
            WATCHLIST_COLLECTION,
            "read the row",
            lambda client: client.query(
                WATCHLIST_COLLECTION, filter=f'entry_id == "{entry.entry_id}"', output_fields=fields
            ),
        )
        swapped = {**row, VECTOR_FIELD: (-np.asarray(row[VECTOR_FIELD], dtype=np.float32)).tolist()}
        gallery.connection.run(
            WATCHLIST_COLLECTION, "swap", lambda client: client.delete(WATCHLIST_COLLECTION, ids=[entry.entry_id])
        )
        gallery.connection.run(
            WATCHLIST_COLLECTION, "swap", lambda client: client.insert(WATCHLIST_COLLECTION, [swapped])
        )
    head = audit_head(lfr_config)
    ran = lfr(
        lfr_config, "retro", photo("Tony_Blair", 3), "--watchlist", "tampered", "--out", tmp_path / "out", *AUTHORISED
    )
    assert ran.code == 2, ran.err
    assert "watchlist tampered@v1 changed since it was frozen: 1 changed" in ran.err
    assert "lfr watchlist freeze tampered" in ran.err
    assert not (tmp_path / "out" / "report.json").exists()
    assert [e.action for e in audit_entries(lfr_config, head)] == [], "nothing was searched, so nothing is audited"
