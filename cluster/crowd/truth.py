"""Ground truth of a synthetic crowd: who is on which camera, in which frames, inside which box.

Written beside the videos as `ground_truth.json` and read back with `CrowdTruth.load`, so
load tests and the demo can score what the cluster reports. Video files are named relative to
the truth file's folder; photos and the background clip are named relative to the package's
assets folder (`ASSETS`) when they lie inside it, else by absolute path. Floats are rounded when the
truth is built, so the same spec and seed give byte-identical JSON.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cluster.crowd.spec import CrowdSpec

ASSETS = Path(__file__).resolve().parent / "assets"
"""The crowd's shipped photos and street clip (see assets/PROVENANCE.md); truth records name them relative to it."""
FORMAT = "lfr-crowd-truth/1"
GENERATED_BACKGROUND = "generated"
"""`CrowdTruth.background` when no video was found and a textured background was drawn."""


def asset_name(path: Path) -> str:
    """`path` relative to the shipped assets if it lies among them, else absolute (POSIX form)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(ASSETS).as_posix()
    except ValueError:
        return resolved.as_posix()


def resolve_asset(name: str) -> Path:
    """The file a truth record names (see `asset_name`)."""
    path = Path(name)
    return path if path.is_absolute() else ASSETS / path


@dataclass(frozen=True)
class Neighbour:
    """A neighbouring camera and the usual walking time from leaving one view to entering the other."""

    camera: str
    walking_seconds: float


@dataclass(frozen=True)
class CameraTruth:
    """One camera's video: `file` is relative to the folder of ground_truth.json."""

    id: str
    file: str
    fps: int
    frames: int
    width: int
    height: int
    background_offset: int
    """First frame of the background clip this camera's video starts from."""
    neighbours: tuple[Neighbour, ...]


@dataclass(frozen=True)
class PersonTruth:
    """One real person (id = LFW name). Enrolment photos never appear in any video."""

    id: str
    on_watchlist: bool
    enrolment_photos: tuple[str, ...]
    appearance_photos: tuple[str, ...]


@dataclass(frozen=True)
class FaceFrame:
    """A pasted face in one frame.

    box: x1 y1 x2 y2 in output pixels: the photo's MTCNN face box, as pasted.
    photo: index into the appearance's `photos` (switching photos stands in for turning).
    turn: horizontal squash (1 = frontal, 0.7 = about 45 degrees of yaw).
    roll: in-plane rotation in degrees. motion_blur: horizontal blur length in pixels.
    defocus: Gaussian blur sigma in pixels. brightness, contrast: (v - 128) * contrast + 128 + brightness.
    visible: share of the box not covered by faces drawn on top of it.
    """

    frame: int
    box: tuple[int, int, int, int]
    photo: int
    turn: float
    roll: float
    motion_blur: float
    defocus: float
    brightness: float
    contrast: float
    visible: float = 1.0

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Appearance:
    """One walk of a person through one camera's view; `trip` numbers the person's walks along the street."""

    id: int
    person: str
    camera: str
    trip: int
    photos: tuple[str, ...]
    frames: tuple[FaceFrame, ...]

    def __post_init__(self) -> None:
        numbers = [face.frame for face in self.frames]
        if not numbers or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise ValueError(f"appearance {self.id}: frames must be consecutive and non-empty")

    @property
    def first_frame(self) -> int:
        return self.frames[0].frame

    @property
    def last_frame(self) -> int:
        return self.frames[-1].frame


def _drawing_key(placed: tuple[Appearance, FaceFrame]) -> tuple[int, int]:
    """Far (small) faces first, so nearer faces are pasted over them."""
    appearance, face = placed
    return face.height, appearance.id


def faces_by_frame(
    appearances: Sequence[Appearance], camera: str, frames: int
) -> list[list[tuple[Appearance, FaceFrame]]]:
    """For each frame of `camera`, its faces in drawing order (far first)."""
    per_frame: list[list[tuple[Appearance, FaceFrame]]] = [[] for _ in range(frames)]
    for appearance in appearances:
        if appearance.camera == camera:
            for face in appearance.frames:
                per_frame[face.frame].append((appearance, face))
    for placed in per_frame:
        placed.sort(key=_drawing_key)
    return per_frame


def with_visibility(appearances: Sequence[Appearance], cameras: Sequence[str], frames: int) -> list[Appearance]:
    """`appearances` with each face's `visible` share set from the faces drawn over it."""
    visible: dict[tuple[int, int], float] = {}
    for camera in cameras:
        for placed in faces_by_frame(appearances, camera, frames):
            for index, (appearance, face) in enumerate(placed[:-1]):
                x1, y1, x2, y2 = face.box
                covered = np.zeros((y2 - y1, x2 - x1), dtype=bool)
                for _, above in placed[index + 1 :]:
                    ax1, ay1, ax2, ay2 = above.box
                    covered[max(ay1 - y1, 0) : max(ay2 - y1, 0), max(ax1 - x1, 0) : max(ax2 - x1, 0)] = True
                visible[appearance.id, face.frame] = round(1.0 - float(covered.mean()), 3)
    return [
        replace(a, frames=tuple(replace(f, visible=visible.get((a.id, f.frame), 1.0)) for f in a.frames))
        for a in appearances
    ]


_FACE_COLUMNS = ("box", "photo", "turn", "roll", "motion_blur", "defocus", "brightness", "contrast", "visible")


def _appearance_record(appearance: Appearance) -> dict:
    """Per-frame values as columns (one list per field), which keeps the file small."""
    record = {
        "id": appearance.id,
        "person": appearance.person,
        "camera": appearance.camera,
        "trip": appearance.trip,
        "first_frame": appearance.first_frame,
        "last_frame": appearance.last_frame,
        "photos": list(appearance.photos),
    }
    for column in _FACE_COLUMNS:
        values = [getattr(face, column) for face in appearance.frames]
        record[column] = [list(v) for v in values] if column == "box" else values
    return record


def _appearance_from(record: dict) -> Appearance:
    first, last = record["first_frame"], record["last_frame"]
    columns = {column: record[column] for column in _FACE_COLUMNS}
    lengths = {len(values) for values in columns.values()}
    if lengths != {last - first + 1}:
        raise ValueError(f"appearance {record['id']}: per-frame lists must hold {last - first + 1} values each")
    frames = tuple(
        FaceFrame(
            frame=first + i,
            box=tuple(columns["box"][i]),
            **{column: columns[column][i] for column in _FACE_COLUMNS if column != "box"},
        )
        for i in range(last - first + 1)
    )
    return Appearance(
        id=record["id"],
        person=record["person"],
        camera=record["camera"],
        trip=record["trip"],
        photos=tuple(record["photos"]),
        frames=frames,
    )


@dataclass(frozen=True)
class CrowdTruth:
    """Everything a scorer needs: the spec, the cameras, the people and every appearance."""

    spec: CrowdSpec
    background: str
    cameras: tuple[CameraTruth, ...]
    people: tuple[PersonTruth, ...]
    appearances: tuple[Appearance, ...]

    def camera(self, camera_id: str) -> CameraTruth:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        raise KeyError(f"no camera {camera_id!r}; cameras are {[c.id for c in self.cameras]}")

    def person(self, person_id: str) -> PersonTruth:
        for person in self.people:
            if person.id == person_id:
                return person
        raise KeyError(f"no person {person_id!r}; people are {[p.id for p in self.people]}")

    @property
    def watchlist(self) -> tuple[PersonTruth, ...]:
        return tuple(person for person in self.people if person.on_watchlist)

    def faces_by_frame(self, camera_id: str) -> list[list[tuple[Appearance, FaceFrame]]]:
        """For each frame of the camera, the faces in it in drawing order (far first)."""
        return faces_by_frame(self.appearances, camera_id, self.camera(camera_id).frames)

    def to_json(self) -> str:
        document = {
            "format": FORMAT,
            "paths": "videos relative to this file; photos and background relative to the package's crowd assets",
            "spec": self.spec.to_dict(),
            "background": self.background,
            "cameras": [
                {
                    "id": c.id,
                    "file": c.file,
                    "fps": c.fps,
                    "frames": c.frames,
                    "width": c.width,
                    "height": c.height,
                    "background_offset": c.background_offset,
                    "neighbours": [{"camera": n.camera, "walking_seconds": n.walking_seconds} for n in c.neighbours],
                }
                for c in self.cameras
            ],
            "people": [
                {
                    "id": p.id,
                    "on_watchlist": p.on_watchlist,
                    "enrolment_photos": list(p.enrolment_photos),
                    "appearance_photos": list(p.appearance_photos),
                }
                for p in self.people
            ],
        }
        head = json.dumps(document, indent=1)[:-2]
        lines = ",\n  ".join(json.dumps(_appearance_record(a), separators=(",", ":")) for a in self.appearances)
        return f'{head},\n "appearances": [\n  {lines}\n ]\n}}\n'

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "CrowdTruth":
        """Read a truth file; a file of another kind or with missing keys raises ValueError naming it."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc}); pass the ground_truth.json written by make_crowd") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"{path}: not a crowd ground-truth file (expected format {FORMAT!r})")
        try:
            return cls(
                spec=CrowdSpec.from_dict(document["spec"]),
                background=document["background"],
                cameras=tuple(
                    CameraTruth(
                        **{k: v for k, v in c.items() if k != "neighbours"},
                        neighbours=tuple(Neighbour(**n) for n in c["neighbours"]),
                    )
                    for c in document["cameras"]
                ),
                people=tuple(
                    PersonTruth(
                        id=p["id"],
                        on_watchlist=p["on_watchlist"],
                        enrolment_photos=tuple(p["enrolment_photos"]),
                        appearance_photos=tuple(p["appearance_photos"]),
                    )
                    for p in document["people"]
                ),
                appearances=tuple(_appearance_from(a) for a in document["appearances"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: malformed crowd ground truth ({exc!r})") from exc
