"""Factories for control-room tests: alerts whose crops are real faces (lfw10), watchlist photos, status."""

import io
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.cameras.health import CameraHealth, CameraState
from cluster.cases.model import Candidate, Case, CaseAuthorisation, CaseKind, MatchKind, Provenance
from cluster.cases.store import CaseStore
from cluster.deployment.window import DeploymentWindow
from cluster.live.status_board import DeploymentStatus
from tests.paths import LFW10

PEOPLE = sorted(path.name for path in LFW10.iterdir() if path.is_dir())
WATCHLIST = "west_end_wanted"
DEPLOYMENT = "west_end"
CAMERAS = ("oxford_st_2", "regent_st_1", "bond_st_3")


THRESHOLD = 3.449
"""A fused-score threshold as freezing a 9-entry list at 1 in 6,000 gives (see lfr demo)."""
TARGET_FPIR = 1 / 6000
EXPECTED_TPIR = 0.65
MODELS = "mtcnn+dlib_resnet_v1+faceres"


def face_jpeg(path: Path) -> bytes:
    """The face in an lfw10 photo (they sit in the centre), cropped and re-encoded as a sighting crop is."""
    with Image.open(path) as photo:
        face = photo.convert("RGB").crop((70, 55, 180, 190)).resize((160, 196))
    buffer = io.BytesIO()
    face.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def photos_of(person: str) -> list[Path]:
    return sorted((LFW10 / person).glob("*.jpg"))


def live_crop(person: str, take: int = 0) -> bytes:
    """A crop from the person's `take`-th photo; the last photo is kept for the watchlist."""
    return face_jpeg(photos_of(person)[take])


def unit_vector(seed: str) -> np.ndarray:
    vector = np.random.default_rng(zlib.crc32(seed.encode())).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def make_alert(
    alert_id: str,
    person: str = PEOPLE[0],
    cameras: tuple[str, ...] = CAMERAS[:1],
    created_at: float | None = None,
    deployment_id: str = DEPLOYMENT,
) -> Alert:
    """A new alert with one sighting per camera, each with a real face crop of `person`."""
    created = time.time() if created_at is None else created_at
    sightings = tuple(
        Sighting(
            sighting_id=f"{camera}:{alert_id}",
            camera_id=camera,
            person_id=person,
            watchlist_id=WATCHLIST,
            similarity=4.6 - 0.1 * index,
            first_seen=created - 6.0 + 2 * index,
            last_seen=created - 3.0 + 2 * index,
            frames=14,
            embedding=unit_vector(f"{camera}:{alert_id}"),
            crop_jpeg=live_crop(person, index),
            box=np.array([120.0, 64.0, 184.0, 140.0]),
            model_scores={"dlib_resnet_v1": 0.95 - 0.01 * index, "faceres": 0.74 - 0.01 * index},
        )
        for index, camera in enumerate(cameras)
    )
    return Alert(
        alert_id=alert_id,
        deployment_id=deployment_id,
        person_id=person,
        watchlist_id=WATCHLIST,
        state=AlertState.NEW,
        sightings=sightings,
        confidence=0.93,
        created_at=created,
        updated_at=created,
        threshold=THRESHOLD,
        model=MODELS,
        target_fpir=TARGET_FPIR,
        expected_tpir=EXPECTED_TPIR,
    )


def write_watchlist_photos(root: Path) -> Path:
    """root/<watchlist>/<person>.jpg for every lfw10 person, from a photo the live crops do not use."""
    folder = root / WATCHLIST
    folder.mkdir(parents=True)
    for person in PEOPLE:
        (folder / f"{person}.jpg").write_bytes(face_jpeg(photos_of(person)[-1]))
    return root


def camera_health(camera_id: str, state: CameraState, now: float) -> CameraHealth:
    streaming = state == CameraState.STREAMING
    return CameraHealth(
        camera_id=camera_id,
        state=state,
        since=now - 3600,
        fps_in=25.0 if streaming else 0.0,
        fps_out=5.0 if streaming else 0.0,
        frames_decoded=90_000,
        frames_sampled=18_000,
        frames_dropped=12,
        frames_corrupt=1,
        queue_length=2,
        reconnects=0 if streaming else 3,
        failures=0 if streaming else 4,
        last_error=None if streaming else "connection refused",
        last_error_time=None if streaming else now - 20,
        last_frame_time=now - 0.2 if streaming else now - 95,
    )


def deployment_status(now: float, faces_seen: int = 18_240, alerts: int = 3) -> DeploymentStatus:
    states = (CameraState.STREAMING, CameraState.STREAMING, CameraState.BACKING_OFF)
    return DeploymentStatus(
        deployment_id=DEPLOYMENT,
        place="Oxford Circus, London W1",
        window=DeploymentWindow(now - 2 * 3600, now + 4 * 3600),
        watchlist_id=WATCHLIST,
        watchlist_version="2025-06-14.1",
        threshold=THRESHOLD,
        model=MODELS,
        faces_seen=faces_seen,
        non_match_deletions=faces_seen - 40,
        alerts=alerts,
        cameras=tuple(camera_health(camera, state, now) for camera, state in zip(CAMERAS, states)),
        published_at=now,
        target_fpir=TARGET_FPIR,
        expected_tpir=EXPECTED_TPIR,
    )


CASE_ID = "c1"
"""The case `open_case` opens unless told otherwise."""


def open_case(
    cases: CaseStore,
    case_id: str = CASE_ID,
    people: tuple[str, ...] = tuple(PEOPLE[:2]),
    at: float | None = None,
    reports: tuple[str, ...] = (),
) -> Case:
    """A retrospective search's case with one candidate per person, each a real face crop; `reports`: the files its
    search wrote."""
    candidates = [
        Candidate(
            source=f"/footage/{person}.jpg",
            frame_index=0,
            frame_time_s=None,
            box=(70.0, 55.0, 180.0, 190.0),
            match_kind=MatchKind.WATCHLIST_ENTRY,
            match_id=f"entry-{person}",
            person_id=person,
            label=person.replace("_", " "),
            score=THRESHOLD + 0.1 * (1 + index),
            threshold=THRESHOLD,
            crop_jpeg=live_crop(person),
            model_scores={"dlib_resnet_v1": 0.61, "faceres": 0.72},
        )
        for index, person in enumerate(people)
    ]
    provenance = Provenance(
        query=f"watchlist {WATCHLIST}@v1 (9 entries)",
        query_digest="d" * 64,
        model=MODELS,
        threshold=THRESHOLD,
        sources=tuple(c.source for c in candidates[:3]),
        sources_count=len(candidates),
        sources_digest="e" * 64,
        faces_seen=12,
        reports=reports,
    )
    authorisation = CaseAuthorisation("DS Patel", "Op Falcon: robbery at Oxford Circus, ref CAD 4412")
    return cases.open(CaseKind.RETROSPECTIVE, authorisation, provenance, candidates, at=at, case_id=case_id)
