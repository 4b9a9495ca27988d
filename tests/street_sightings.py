"""Sightings on a small street of cameras, as the tracker makes them from real lfw10 faces.

Shared by the fusion and coordination tests: each sighting's embedding is a real tracklet's (the
quality-weighted pool of three photos of a person); its similarity is to the person's watchlist
photo (photo 1).
"""

from itertools import count

from cluster.alerts.model import Sighting
from cluster.cameras.config import CameraConfig, Neighbour
from cluster.fusion.config import FusionConfig
from cluster.fusion.fuser import Fuser
from cluster.fusion.topology import CameraTopology
from cluster.matching.config import MatchingConfig
from cluster.tracking.tracklet import Tracklet
from cluster.vision.face import Face
from tests.lfw10_portraits import Lfw10Portraits

PEOPLE = ("Colin_Powell", "Jacques_Chirac", "Tony_Blair")
T0 = 1_700_000_000.0
WATCHLIST = "wl_west_end"
THRESHOLD = MatchingConfig().similarity_threshold
_ids = count(1)


def street_faces(portraits: Lfw10Portraits) -> dict[str, list[Face]]:
    """Seven photos of each person in PEOPLE, their real faces (the one nearest the photo's centre)."""
    return {person: [photo.face for photo in portraits.of(person)[:7]] for person in PEOPLE}


def camera(camera_id: str, *neighbours: tuple[str, float]) -> CameraConfig:
    return CameraConfig(
        id=camera_id,
        source=f"rtsp://127.0.0.1:8554/{camera_id}",
        signage_notice="Live facial recognition in use.",
        neighbours=tuple(Neighbour(camera_id=c, walking_seconds=s) for c, s in neighbours),
    )


def street_cameras() -> list[CameraConfig]:
    """st_1 -180 s- st_2 -210 s (250 s back)- st_3, and a camera no one can walk to."""
    return [
        camera("st_1", ("st_2", 180.0)),
        camera("st_2", ("st_3", 210.0)),
        camera("st_3", ("st_2", 250.0)),
        camera("isolated"),
    ]


def make_fuser(topology: CameraTopology, **config) -> Fuser:
    return Fuser(
        topology, FusionConfig(**config), deployment_id="west_end", threshold=THRESHOLD, model="dlib-resnet-v1"
    )


def sighting(
    faces: dict[str, list[Face]],
    person: str,
    camera_id: str,
    start: float,
    photos: tuple[int, ...] = (1, 2, 3),
    seconds: float = 4.0,
    frames: int = 12,
    matched_as: str | None = None,
) -> Sighting:
    """A sighting as the tracker makes it: the pooled tracklet of `photos`, matched to a watchlist photo."""
    tracklet = Tracklet(capacity=len(photos))
    for i in photos:
        tracklet.offer(faces[person][i], T0 + start, None)
    embedding = tracklet.pooled_embedding()
    listed = matched_as or person
    return Sighting(
        sighting_id=f"{camera_id}:t{next(_ids)}",
        camera_id=camera_id,
        person_id=f"p_{listed}",
        watchlist_id=WATCHLIST,
        similarity=float(embedding @ faces[listed][0].embedding),
        first_seen=T0 + start,
        last_seen=T0 + start + seconds,
        frames=frames,
        embedding=embedding,
    )
