"""What recorded crowd to synthesise: cameras, length, frame size, people and the street's walking times.

A `CrowdSpec` is validated when it is built, so a bad request fails before any video is written,
with a message that names the field and says what would be accepted. Validation does no I/O.
"""

from dataclasses import asdict, dataclass

MAX_PEOPLE = 10
"""The real identities available: the ten people of cluster/crowd/assets/lfw10."""
MAX_CAMERAS = 64
MAX_SECONDS = 3600.0
MAX_FPS = 120
MIN_SIDE = (160, 120)
MAX_SIDE = (3840, 2160)
MAX_WALKING_SECONDS = 600.0


def _whole(name: str, value: object, low: int, high: int) -> None:
    """Refuse anything but an int within [low, high] (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value != value:
        raise ValueError(f"{name} must be a number, got NaN")
    return float(value)


@dataclass(frozen=True)
class CrowdSpec:
    """A crowd on a street of `cameras` cameras in a line, each recorded for `seconds`.

    walking_seconds: the (shortest, longest) time a person takes from leaving one camera's
        view to entering the next one's; each pair of neighbours gets a time in this range.
    watchlist_fraction: share of the people put on the watchlist (at least one when > 0).
    """

    cameras: int
    seconds: float
    seed: int = 0
    fps: int = 25
    width: int = 1280
    height: int = 720
    people: int = MAX_PEOPLE
    watchlist_fraction: float = 0.3
    walking_seconds: tuple[float, float] = (4.0, 8.0)

    def __post_init__(self) -> None:
        _whole("cameras", self.cameras, 1, MAX_CAMERAS)
        seconds = _number("seconds", self.seconds)
        if not 0.0 < seconds <= MAX_SECONDS:
            raise ValueError(f"seconds must be above 0 and at most {MAX_SECONDS:.0f}, got {self.seconds}")
        _whole("seed", self.seed, 0, 2**63 - 1)
        _whole("fps", self.fps, 1, MAX_FPS)
        _whole("width", self.width, MIN_SIDE[0], MAX_SIDE[0])
        _whole("height", self.height, MIN_SIDE[1], MAX_SIDE[1])
        if self.width % 2 or self.height % 2:
            raise ValueError(
                f"width and height must be even for yuv420p H.264, got {self.width}x{self.height}; "
                f"try {self.width + self.width % 2}x{self.height + self.height % 2}"
            )
        _whole("people", self.people, 1, MAX_PEOPLE)
        fraction = _number("watchlist_fraction", self.watchlist_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"watchlist_fraction must be between 0 and 1, got {self.watchlist_fraction}")
        self._check_walking_seconds()
        if self.frames < 1:
            raise ValueError(
                f"{self.seconds} s at {self.fps} fps is less than one frame; ask for at least {1 / self.fps:.3f} s"
            )
        object.__setattr__(self, "seconds", seconds)
        object.__setattr__(self, "watchlist_fraction", fraction)

    def _check_walking_seconds(self) -> None:
        walking = self.walking_seconds
        if not isinstance(walking, tuple | list) or len(walking) != 2:
            raise ValueError(f"walking_seconds must be a (shortest, longest) pair, got {walking!r}")
        shortest = _number("walking_seconds[0]", walking[0])
        longest = _number("walking_seconds[1]", walking[1])
        if not 0.0 < shortest <= longest <= MAX_WALKING_SECONDS:
            raise ValueError(
                f"walking_seconds must satisfy 0 < shortest <= longest <= {MAX_WALKING_SECONDS:.0f}, got {walking!r}"
            )
        object.__setattr__(self, "walking_seconds", (shortest, longest))

    @property
    def frames(self) -> int:
        """Frames per camera."""
        return round(self.seconds * self.fps)

    @property
    def watchlist_size(self) -> int:
        """How many of the people are on the watchlist."""
        if self.watchlist_fraction == 0.0:
            return 0
        return min(self.people, max(1, round(self.people * self.watchlist_fraction)))

    def to_dict(self) -> dict:
        record = asdict(self)
        record["walking_seconds"] = list(self.walking_seconds)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> "CrowdSpec":
        """A spec from `to_dict` output; unknown or missing keys raise ValueError."""
        try:
            return cls(**{**record, "walking_seconds": tuple(record["walking_seconds"])})
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not a crowd spec ({exc}); expected the keys {sorted(cls.__dataclass_fields__)}") from exc
