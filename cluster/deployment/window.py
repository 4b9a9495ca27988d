"""When a deployment may match: the authorised time window, checked against each frame's capture time."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DeploymentWindow:
    """When matching may run: from starts_at (inclusive) to ends_at (exclusive), unix seconds."""

    starts_at: float
    ends_at: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.starts_at) and math.isfinite(self.ends_at)) or self.ends_at <= self.starts_at:
            raise ValueError(f"a deployment window must end after it starts, got {self.starts_at}..{self.ends_at}")

    def allows(self, captured_at: float) -> bool:
        """Whether a frame captured at `captured_at` (unix seconds, as `Frame.captured_at`) may be matched."""
        return self.starts_at <= captured_at < self.ends_at
