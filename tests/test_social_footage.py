"""`lfr social footage`: recorded footage searched for the faces of a flagged post, on a real milvus-lite gallery with
real lfw10 photos, a real H.264 video and the real text classifier."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from cluster.audit.actions import AuditAction
from cluster.cases.model import CaseKind, MatchKind
from cluster.config import LfrConfig
from cluster.retro.footage import find_footage
from cluster.tracking.crops import face_crop_jpeg
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import models_name
from tests.test_social_cli import AUTHORISED, post, the_case, the_crop
from tests.test_watchlist_cli import audit_entries, audit_head, holds_no_vector, lfr, lite_lfr_config, photo

pytestmark = pytest.mark.slow

OFFICER = "DS Patel"
REASON = "Op Harrow: the flagged post's author at the station on 14 June, ref CAD 9120"
SEARCH_AUTHORISED = ("--officer", OFFICER, "--reason", REASON)
OFFENSIVE = "fuck the police, absolute scum, see you at the barriers"
CALM = "lovely turnout at the north gate, thank you all"
FLAGGED = "x:2001"
"""Tony_Blair_0003 with an offensive text: the post searched for."""
VIDEO_SECONDS = 2
"""Seconds of the video showing Hugo Chavez, then as many showing Tony Blair."""


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    """A gallery holding a flagged post of Blair, an unflagged one of Bush and a flagged one with text only."""
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        manifest = tmp_path_factory.mktemp("posts") / "manifest.jsonl"
        lines = [
            post(photo("Tony_Blair", 3), "x", "2001", text=OFFENSIVE),
            post(photo("George_W_Bush", 2), "x", "2002", text=CALM),
            json.dumps(
                {
                    "platform": "x",
                    "post_id": "2003",
                    "url": "https://example.org/x/2003",
                    "posted_at": "2025-06-14T11:00:00Z",
                    "text": OFFENSIVE,
                }
            ),
        ]
        manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
        ran = lfr(config, "social", "ingest", manifest, *AUTHORISED)
        assert ran.code == 0, ran.err
        assert "flagged 2 posts" in ran.out and "lines 1, 3" in ran.out, ran.out
        yield config


def write_video(path: Path, first: Path, then: Path, fps: int = 5) -> Path:
    """An H.264 MP4: VIDEO_SECONDS of the photo `first`, then as long of `then`."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 250, 250, "yuv420p"
        for still in (first, then):
            pixels = np.ascontiguousarray(load_image(still)[:250, :250])
            for _ in range(VIDEO_SECONDS * fps):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """Two other photos of Blair, four photos of other people (six faces) and a video of Chavez, then Blair."""
    folder = tmp_path_factory.mktemp("footage")
    for person, number in [
        ("Tony_Blair", 7),
        ("Tony_Blair", 10),
        ("George_W_Bush", 9),
        ("George_W_Bush", 2),
        ("Hugo_Chavez", 1),
        ("Colin_Powell", 10),
    ]:
        (folder / f"{person}_{number:04d}.jpg").write_bytes(photo(person, number).read_bytes())
    write_video(folder / "station.mp4", photo("Hugo_Chavez", 2), photo("Tony_Blair", 1))
    return folder


def test_a_flagged_post_is_found_in_footage_of_its_face_and_nobody_else_is_kept(lfr_config, footage, tmp_path):
    start = audit_head(lfr_config)
    out = tmp_path / "out"
    ran = lfr(lfr_config, "social", "footage", FLAGGED, footage, "--out", out, *SEARCH_AUTHORISED)
    assert ran.code == 0, ran.err
    assert "searched 7 of 7 sources for x post 2001 (1 face) at threshold" in ran.out, ran.out

    report = json.loads((out / "report.json").read_text())
    assert report["watchlist"] is None
    assert (report["post"]["platform"], report["post"]["post_id"]) == ("x", "2001")
    (face_id,) = report["post"]["face_ids"]
    assert report["calibration"]["list_size"] == 1, "the threshold is calibrated for the post's one face"
    (video,) = [source for source in report["sources"] if source["kind"] == "video"]
    assert video["frames_searched"] == 2 * VIDEO_SECONDS * 2, "the video's 4 s at 2 frames per second"
    matches = report["matches"]
    assert {Path(m["source"]).name for m in matches if m["kind"] == "image"} == {
        "Tony_Blair_0007.jpg",
        "Tony_Blair_0010.jpg",
    }, [(m["source"], m["similarity"]) for m in matches]
    video_matches = [m for m in matches if m["kind"] == "video"]
    assert video_matches and all(m["frame_time_s"] >= VIDEO_SECONDS for m in video_matches), video_matches
    assert len(video_matches) == VIDEO_SECONDS * 2, "every sampled frame of Blair, none of Chavez"
    assert report["faces_unmatched"] == report["faces_seen"] - len(report["matches"]) > 0

    case = the_case(lfr_config, ran.out.splitlines()[-1].split()[1].rstrip(":"))
    assert case.kind is CaseKind.RETROSPECTIVE
    assert len(case.items) == len(report["matches"])
    for item in case.items:
        assert (item.match_kind, item.match_id, item.person_id) == (MatchKind.SOCIAL_FACE, face_id, FLAGGED)
        assert item.label == "https://example.org/x/2001" and item.has_crop
        assert item.score >= item.threshold == pytest.approx(report["threshold"])
    still = next(item for item in case.items if item.source.endswith("Tony_Blair_0007.jpg"))
    assert the_crop(lfr_config, case.case_id, still.number) == face_crop_jpeg(
        load_image(still.source), np.asarray(still.box)
    ), "the crop is the footage's face, not the post's"
    names = [str(source.path) for source in find_footage([footage])]
    provenance = case.provenance
    assert "x:2001" in provenance.query and provenance.query_digest == report["post"]["digest"]
    assert (provenance.sources_count, provenance.sources_digest) == (
        7,
        hashlib.sha256("\n".join(names).encode()).hexdigest(),
    )
    assert provenance.faces_seen == report["faces_seen"]

    entries = audit_entries(lfr_config, start, intents=True)
    assert [entry.action for entry in entries] == [AuditAction.SEARCH, AuditAction.CASE_OPENED, AuditAction.SEARCH]
    intent, _, outcome = entries
    for entry in (intent, outcome):
        assert (entry.actor, entry.action, entry.details["kind"]) == (OFFICER, AuditAction.SEARCH, "social_footage")
        assert entry.details["post"] == FLAGGED and holds_no_vector(entry.details)
    assert intent.details["reason"] == REASON
    assert intent.details["sources"]["count"] == 7 and intent.details["sources"]["sha256"] == provenance.sources_digest
    assert intent.details["calibration"]["threshold"] == pytest.approx(report["threshold"], abs=1e-6)
    assert intent.details["model"] == models_name(lfr_config.face_models)
    assert outcome.details["case_id"] == case.case_id and outcome.details["matches"] == len(case.items)


@pytest.mark.parametrize(
    ("post_key", "options", "message"),
    [
        ("x:2002", (), "post x:2002 is not flagged"),
        ("x:9999", (), "no stored post x:9999"),
        ("x:2003", (), "post x:2003 has no face to search for"),
        ("x:2001", ("--face", "1"), "--face 1 asked for, but post x:2001 has 1 stored face"),
        ("2001", (), "does not name a post: write PLATFORM:POST_ID"),
        ("x:2001", ("--fps", "0"), "--fps must be above 0"),
    ],
)
def test_a_post_that_may_not_be_searched_is_refused_and_nothing_searched(
    lfr_config, footage, tmp_path, post_key, options, message
):
    start = audit_head(lfr_config)
    out = tmp_path / "out"
    ran = lfr(lfr_config, "social", "footage", post_key, footage, "--out", out, *options, *SEARCH_AUTHORISED)
    assert ran.code == 2 and message in ran.err and ran.out == "", ran.err
    assert not out.exists()
    assert audit_entries(lfr_config, start, intents=True) == [], "nothing was searched, so nothing is audited"


def test_only_flagged_posts_are_searched_and_the_refusal_says_why(lfr_config, footage, tmp_path):
    ran = lfr(lfr_config, "social", "footage", "x:2002", footage, "--out", tmp_path / "out", *SEARCH_AUTHORISED)
    assert "only a flagged post's faces are searched for in footage" in ran.err, ran.err
    assert "below the triage threshold 0.5" in ran.err


def test_a_post_whose_image_has_gone_is_refused_with_what_to_do(lfr_config, footage, tmp_path):
    """The gallery keeps only the primary model's embedding of a post's face; the fused score needs both, so the face
    is embedded again from the post's image, and a post whose image was moved since cannot be searched for."""
    moved = tmp_path / "moved.jpg"
    moved.write_bytes(photo("Tony_Blair", 5).read_bytes())
    manifest = tmp_path / "moved.jsonl"
    manifest.write_text(post(moved, "x", "2004", text=OFFENSIVE) + "\n", encoding="utf-8")
    assert lfr(lfr_config, "social", "ingest", manifest, *AUTHORISED).code == 0
    moved.unlink()
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "footage", "x:2004", footage, "--out", tmp_path / "out", *SEARCH_AUTHORISED)
    assert ran.code == 2 and "the image of post x:2004 can no longer be read" in ran.err, ran.err
    assert "restore the image" in ran.err and not (tmp_path / "out").exists()
    assert audit_entries(lfr_config, start, intents=True) == []


def test_an_unreadable_source_is_reported_and_the_rest_searched(lfr_config, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(photo("Tony_Blair", 4).read_bytes()[:400])
    out = tmp_path / "out"
    ran = lfr(
        lfr_config, "social", "footage", FLAGGED, corrupt, photo("Tony_Blair", 7), "--out", out, *SEARCH_AUTHORISED
    )
    assert ran.code == 1, ran.err
    assert f"not searched: {corrupt}: the image data is corrupt or truncated" in ran.err
    report = json.loads((out / "report.json").read_text())
    assert [Path(m["source"]).name for m in report["matches"]] == ["Tony_Blair_0007.jpg"]


@pytest.mark.parametrize(
    ("authorisation", "message"),
    [(("--reason", REASON), "pass --officer NAME"), (("--officer", OFFICER), "pass --reason TEXT")],
)
def test_a_search_without_its_named_officer_and_reason_searches_nothing(
    lfr_config, footage, tmp_path, authorisation, message
):
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, "social", "footage", FLAGGED, footage, "--out", tmp_path / "out", *authorisation)
    assert ran.code == 2 and message in ran.err, ran.err
    assert not (tmp_path / "out").exists()
    assert audit_entries(lfr_config, start, intents=True) == []
