"""Who walks where and when: the street of cameras, the people, and every walk through a camera's view.

The street is a line of cameras, cam0 - cam1 - ..., each pair of neighbours a walking time apart.
A person makes trips along it: enters at a random time (at an end of the street or in the
middle), walks through consecutive cameras in one direction, leaves, pauses and may come back.
A person is never in two places at once. In each camera's view the face crosses the frame,
grows or shrinks (approaching or receding), turns (squash and a switch to another photo of the
same person), rolls, blurs and passes through changing light. Everything is drawn from
numpy generators seeded from the spec, in a fixed order, so a seed always gives the same crowd.
"""

import math
from dataclasses import replace

import numpy as np

from cluster.crowd.photos import FacePhoto
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.sprites import MASK_HALF_HEIGHT, MASK_HALF_WIDTH, MASK_LIFT
from cluster.crowd.truth import Appearance, CameraTruth, FaceFrame, Neighbour, PersonTruth, with_visibility

ENROLMENT_PHOTOS = 3
"""Photos of each watchlist person kept out of the videos, for enrolment."""
MIN_APPEARANCE_PHOTOS = 2
WALK_THROUGH_SECONDS = (2.0, 4.0)
"""How long a face stays in one camera's view."""
PAUSE_SECONDS = (1.0, 8.0)
"""Between a person's trips."""
FIRST_ENTRY_SECONDS = 8.0
"""Everyone enters within this time (or within the video, if shorter)."""
PACE = (0.9, 1.1)
"""A person's walking speed relative to the street's usual times."""
FACE_HEIGHTS_AT_720P = (40.0, 160.0)
MIN_FACE_HEIGHT = 24.0
"""Small outputs keep faces at least this tall (MTCNN looks for faces of 20 px and up)."""
MAX_YAW_DEGREES = 45.0
MAX_MOTION_BLUR_AT_720P = 6.0
MAX_DEFOCUS_AT_720P = 1.2
BOB_HERTZ, BOB_SHARE = 1.8, 0.006
"""Walking gait: the head bobs at about two steps a second, by this share of the frame height."""


def camera_id(index: int) -> str:
    return f"cam{index}"


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def plan_street(spec: CrowdSpec, background_frames: int) -> tuple[CameraTruth, ...]:
    """Cameras in a line with a walking time per neighbouring pair and a background start per camera."""
    rng = np.random.default_rng([spec.seed, 0])
    low, high = spec.walking_seconds
    walking = [_clamp(round(rng.uniform(low, high), 1), low, high) for _ in range(spec.cameras - 1)]
    offsets = rng.integers(0, background_frames, spec.cameras)
    cameras = []
    for index in range(spec.cameras):
        neighbours = []
        if index > 0:
            neighbours.append(Neighbour(camera_id(index - 1), walking[index - 1]))
        if index < spec.cameras - 1:
            neighbours.append(Neighbour(camera_id(index + 1), walking[index]))
        cameras.append(
            CameraTruth(
                id=camera_id(index),
                file=f"{camera_id(index)}.mp4",
                fps=spec.fps,
                frames=spec.frames,
                width=spec.width,
                height=spec.height,
                background_offset=int(offsets[index]),
                neighbours=tuple(neighbours),
            )
        )
    return tuple(cameras)


def plan_people(spec: CrowdSpec, photos: dict[str, list[FacePhoto]]) -> tuple[PersonTruth, ...]:
    """Pick the people, put some on the watchlist, and set aside their enrolment photos."""
    rng = np.random.default_rng([spec.seed, 1])
    names = sorted(photos)
    if len(names) < spec.people:
        raise ValueError(f"spec asks for {spec.people} people but photos of only {len(names)} were found")
    chosen = sorted(str(name) for name in rng.choice(names, spec.people, replace=False))
    watchlist = set(rng.choice(chosen, spec.watchlist_size, replace=False).tolist())
    people = []
    for name in chosen:
        shuffled = [photos[name][i].path for i in rng.permutation(len(photos[name]))]
        reserved = ENROLMENT_PHOTOS if name in watchlist else 0
        if len(shuffled) < reserved + MIN_APPEARANCE_PHOTOS:
            raise ValueError(
                f"{name} has {len(shuffled)} photos with a detectable face; needs {reserved + MIN_APPEARANCE_PHOTOS}"
            )
        people.append(
            PersonTruth(
                id=name,
                on_watchlist=name in watchlist,
                enrolment_photos=tuple(sorted(shuffled[:reserved])),
                appearance_photos=tuple(shuffled[reserved:]),
            )
        )
    return tuple(people)


def plan_appearances(
    spec: CrowdSpec, cameras: tuple[CameraTruth, ...], people: tuple[PersonTruth, ...], aspects: dict[str, float]
) -> tuple[Appearance, ...]:
    """Every walk of every person through a camera's view, numbered in order of entry."""
    walks: list[Appearance] = []
    for index, person in enumerate(people):
        walks.extend(_person_walks(spec, cameras, person, aspects, np.random.default_rng([spec.seed, 2, index])))
    camera_order = {camera.id: i for i, camera in enumerate(cameras)}
    walks.sort(key=lambda a: (a.first_frame, camera_order[a.camera], a.person))
    numbered = [replace(walk, id=number) for number, walk in enumerate(walks)]
    return tuple(with_visibility(numbered, [camera.id for camera in cameras], spec.frames))


def _delay_frames(spec: CrowdSpec, walking_seconds: float, pace: float) -> int:
    """Frames from the last frame on one camera to the first on the next, inside the spec's range."""
    low, high = spec.walking_seconds
    shortest = max(1, math.ceil(low * spec.fps - 1e-9))
    longest = max(shortest, math.floor(high * spec.fps + 1e-9))
    return int(_clamp(round(walking_seconds * pace * spec.fps), shortest, longest))


def _person_walks(
    spec: CrowdSpec,
    cameras: tuple[CameraTruth, ...],
    person: PersonTruth,
    aspects: dict[str, float],
    rng: np.random.Generator,
) -> list[Appearance]:
    count = len(cameras)
    pace = rng.uniform(*PACE)
    photos = person.appearance_photos
    walks: list[Appearance] = []
    start = rng.uniform(0.0, min(spec.seconds, FIRST_ENTRY_SECONDS))
    trip = 0
    while round(start * spec.fps) < spec.frames:
        direction = 1 if count == 1 or rng.random() < 0.5 else -1
        order = list(range(count)) if direction > 0 else list(reversed(range(count)))
        first_stop = 0 if rng.random() < 0.5 else int(rng.integers(0, count))
        last_stop = count - 1 if rng.random() < 0.5 else int(rng.integers(first_stop, count))
        frame = round(start * spec.fps)
        for stop in range(first_stop, last_stop + 1):
            dwell = max(2, round(rng.uniform(*WALK_THROUGH_SECONDS) * spec.fps))
            if frame >= spec.frames:
                break
            pair = (photos[(2 * len(walks)) % len(photos)], photos[(2 * len(walks) + 1) % len(photos)])
            camera = cameras[order[stop]]
            faces = _walk_through(spec, rng, frame, dwell, direction, [aspects[p] for p in pair])
            walks.append(Appearance(-1, person.id, camera.id, trip, pair, faces))
            last = frame + dwell - 1
            if stop < last_stop:
                walking = next(n.walking_seconds for n in camera.neighbours if n.camera == camera_id(order[stop + 1]))
                frame = last + _delay_frames(spec, walking, pace)
        start = (frame + dwell) / spec.fps + rng.uniform(*PAUSE_SECONDS)
        trip += 1
    return walks


def _walk_through(
    spec: CrowdSpec, rng: np.random.Generator, first: int, dwell: int, direction: int, aspects: list[float]
) -> tuple[FaceFrame, ...]:
    """Per-frame faces of one pass through a view; frames past the end of the video are cut off."""
    width, height = spec.width, spec.height
    size = height / 720.0
    low = max(MIN_FACE_HEIGHT, FACE_HEIGHTS_AT_720P[0] * size)
    high = max(low * 1.5, FACE_HEIGHTS_AT_720P[1] * size)
    small = rng.uniform(low, low + 0.6 * (high - low))
    big = min(high, small * rng.uniform(1.3, 2.2))
    approaching = rng.random() < 0.5
    h_start, h_end = (small, big) if approaching else (big, small)
    x_start, x_end = rng.uniform(0.1, 0.35), rng.uniform(0.65, 0.9)
    if direction < 0:
        x_start, x_end = 1 - x_start, 1 - x_end
    lane, drift = rng.uniform(0.3, 0.7), rng.uniform(-0.08, 0.08)
    bob_phase = rng.uniform(0, 2 * math.pi)
    yaw_amp, yaw_freq, yaw_phase = rng.uniform(10, MAX_YAW_DEGREES), rng.uniform(0.15, 0.5), rng.uniform(0, 2 * math.pi)
    roll_base, roll_amp, roll_freq = rng.uniform(-5, 5), rng.uniform(0, 4), rng.uniform(0.2, 0.6)
    shutter = rng.uniform(0.1, 0.7)
    defocus = rng.uniform(0, MAX_DEFOCUS_AT_720P * size)
    brightness, contrast = rng.uniform(-35, 25), rng.uniform(0.75, 1.15)
    flicker_amp, flicker_freq = rng.uniform(0, 12), rng.uniform(0.1, 0.4)
    speed = width * abs(x_end - x_start) / max(dwell - 1, 1)
    motion_blur = round(min(MAX_MOTION_BLUR_AT_720P * size, speed * shutter), 1)

    faces = []
    for i in range(min(dwell, spec.frames - first)):
        progress, seconds = i / max(dwell - 1, 1), i / spec.fps
        face_h = h_start + (h_end - h_start) * progress
        yaw = yaw_amp * math.sin(2 * math.pi * yaw_freq * seconds + yaw_phase)
        turn = math.cos(math.radians(yaw))
        photo = 0 if yaw >= 0 else 1
        face_w = face_h * aspects[photo] * turn
        centre_x = width * (x_start + (x_end - x_start) * progress)
        bob = BOB_SHARE * height * math.sin(2 * math.pi * BOB_HERTZ * seconds + bob_phase)
        centre_y = height * (lane + drift * progress) + bob
        margin_x, margin_top = MASK_HALF_WIDTH * face_w + 2, (MASK_HALF_HEIGHT + MASK_LIFT) * face_h + 2
        centre_x = _clamp(centre_x, margin_x, width - margin_x)
        centre_y = _clamp(centre_y, margin_top, height - MASK_HALF_HEIGHT * face_h - 2)
        box = (
            round(centre_x - face_w / 2),
            round(centre_y - face_h / 2),
            round(centre_x + face_w / 2),
            round(centre_y + face_h / 2),
        )
        faces.append(
            FaceFrame(
                frame=first + i,
                box=box,
                photo=photo,
                turn=round(turn, 3),
                roll=round(roll_base + roll_amp * math.sin(2 * math.pi * roll_freq * seconds), 2),
                motion_blur=motion_blur,
                defocus=round(defocus, 2),
                brightness=round(brightness + flicker_amp * math.sin(2 * math.pi * flicker_freq * seconds), 1),
                contrast=round(contrast, 3),
            )
        )
    return tuple(faces)
