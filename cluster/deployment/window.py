"""When a deployment may match: the authorised time window less its exclusion windows, checked per frame.

An exclusion window (a remembrance service during an assembly, for example) is a stretch inside
the deployment's window during which nothing is matched: a frame captured in it is dropped by the
match stage exactly as a frame captured outside the deployment's window is, and counted apart.
"""

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Admission(enum.StrEnum):
    """What the window says of a frame's capture time."""

    ALLOWED = "allowed"
    OUTSIDE = "outside"
    """Before the deployment starts or after it ends."""
    EXCLUDED = "excluded"
    """Inside one of the deployment's exclusion windows."""


@dataclass(frozen=True)
class Exclusion:
    """A stretch of the deployment during which nothing is matched: starts_at (inclusive) to ends_at (exclusive).

    reason: why, in words the public records show (a remembrance service); nothing personal.
    """

    starts_at: float
    ends_at: float
    reason: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.starts_at) and math.isfinite(self.ends_at)) or self.ends_at <= self.starts_at:
            raise ValueError(f"an exclusion window must end after it starts, got {self.starts_at}..{self.ends_at}")

    def covers(self, captured_at: float) -> bool:
        return self.starts_at <= captured_at < self.ends_at


@dataclass(frozen=True)
class DeploymentWindow:
    """When matching may run: from starts_at (inclusive) to ends_at (exclusive), unix seconds, less `exclusions`.

    exclusions: inside the window, in time order, not overlapping (checked here too, as the window
    also comes from the records database and status snapshots, not only from validated configuration).
    """

    starts_at: float
    ends_at: float
    exclusions: tuple[Exclusion, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.starts_at) and math.isfinite(self.ends_at)) or self.ends_at <= self.starts_at:
            raise ValueError(f"a deployment window must end after it starts, got {self.starts_at}..{self.ends_at}")
        previous: Exclusion | None = None
        for exclusion in self.exclusions:
            if exclusion.starts_at < self.starts_at or exclusion.ends_at > self.ends_at:
                raise ValueError(
                    f"exclusion window {exclusion.starts_at}..{exclusion.ends_at} is not inside the deployment window"
                    f" {self.starts_at}..{self.ends_at}"
                )
            if previous is not None and exclusion.starts_at < previous.ends_at:
                raise ValueError(
                    "exclusion windows must be in time order and not overlap:"
                    f" {exclusion.starts_at}..{exclusion.ends_at} starts before"
                    f" {previous.starts_at}..{previous.ends_at} ends"
                )
            previous = exclusion

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> "DeploymentWindow":
        """The window from its `dataclasses.asdict` form (a JSON snapshot)."""
        exclusions = tuple(Exclusion(**exclusion) for exclusion in document.get("exclusions", ()))
        return cls(float(document["starts_at"]), float(document["ends_at"]), exclusions)

    def admission(self, captured_at: float) -> Admission:
        """What becomes of a frame captured at `captured_at` (unix seconds, as `Frame.captured_at`)."""
        if not self.starts_at <= captured_at < self.ends_at:
            return Admission.OUTSIDE
        if any(exclusion.covers(captured_at) for exclusion in self.exclusions):
            return Admission.EXCLUDED
        return Admission.ALLOWED

    def allows(self, captured_at: float) -> bool:
        """Whether a frame captured at `captured_at` may be matched: inside the window and no exclusion window."""
        return self.admission(captured_at) is Admission.ALLOWED
