"""The figures one load step records: throughput, drops by cause, latency percentiles, resources, accuracy.

Typed, validated models (pydantic), since they are written to report.json and read back by
`--compare`. Latency percentiles are over the samples themselves (numpy's linear interpolation), with
the sample count beside them: a p99 over twelve samples says less than one over a thousand.
"""

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

CDF_POINTS = 101
"""A step's latency distribution is kept as this many quantiles (0 %, 1 %, ... 100 %), for the CDF plot."""


class Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Percentiles(Figures):
    """Seconds at the 50th, 95th and 99th percentile of `samples` values (None without any)."""

    samples: int = Field(ge=0)
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    quantiles: tuple[float, ...] = ()
    """CDF_POINTS evenly spaced quantiles, min to max; empty without samples."""

    @classmethod
    def of(cls, values: Sequence[float]) -> "Percentiles":
        if not len(values):
            return cls(samples=0)
        array = np.asarray(values, dtype=np.float64)
        p50, p95, p99 = (float(v) for v in np.percentile(array, [50, 95, 99]))
        quantiles = tuple(float(v) for v in np.quantile(array, np.linspace(0, 1, CDF_POINTS)))
        return cls(samples=len(array), p50=p50, p95=p95, p99=p99, quantiles=quantiles)


class Drops(Figures):
    """Frames offered during the step and those lost, by cause.

    offered: frames the cameras sampled for the service. full: evicted from the forwarder's waiting
    queue; stale: too old by their turn; at_camera: evicted in the camera before the forwarder took
    them; failed: requests that got no answer; errors: answered with an error.
    """

    offered: int = Field(ge=0)
    full: int = Field(ge=0)
    stale: int = Field(ge=0)
    at_camera: int = Field(ge=0)
    failed: int = Field(ge=0)
    errors: int = Field(ge=0)

    @property
    def total(self) -> int:
        return self.full + self.stale + self.at_camera + self.failed + self.errors

    @property
    def rate(self) -> float:
        """Share of the offered frames lost (0 when none were offered)."""
        return min(1.0, self.total / self.offered) if self.offered else 0.0


class RoleUsage(Figures):
    """CPU and memory of the processes of one role during the step.

    cpu_cores: CPU seconds they used per second of the step (1.0 is one core busy). resident_bytes:
    their resident memory at the step's end; own_bytes: of that, what is not shared (Ray's object
    store pages mapped in a worker are shared).
    """

    role: str
    processes: int = Field(ge=0)
    cpu_cores: float = Field(ge=0)
    resident_bytes: int = Field(ge=0)
    own_bytes: int = Field(ge=0)


class Accuracy(Figures):
    """Alerts against the crowd's truth (`cluster.crowd.scoring`), over the cameras that ran.

    streets: how many copies of the crowd's street ran (more cameras than the crowd has replay its
    videos again as further streets, where the same people walk: each copy can alert them again).
    """

    alerts: int = Field(ge=0)
    true_alerts: int = Field(ge=0)
    false_alerts: int = Field(ge=0)
    watchlist_people_seen: int = Field(ge=0)
    watchlist_visits: int = Field(ge=0)
    people_alerted: int = Field(ge=0)
    people_missed: tuple[str, ...]
    alerts_per_person: float = Field(ge=0)
    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    streets: int = Field(ge=1)


class StepFigures(Figures):
    """Everything one step measured over its `seconds` (after its warm-up)."""

    index: int = Field(ge=0)
    cameras: int = Field(ge=1)
    sample_fps: float = Field(gt=0)
    seconds: float = Field(gt=0)
    frames_per_s: float = Field(ge=0)
    """Frames the face service answered, per second."""
    faces_per_s: float = Field(ge=0)
    drops: Drops
    frame_latency: Percentiles
    """From a frame's capture to its face-service result, pooled over the cameras."""
    alert_latency: Percentiles
    """From the last face of the sighting that raised an alert to the alert being stored."""
    gallery_search: Percentiles
    """One watchlist search (a batch of tracklets) in the match stage."""
    roles: tuple[RoleUsage, ...]
    accuracy: Accuracy
    saturated: str | None = None
    """Why this step saturated (the ramp stopped after it); None while the cluster kept up."""

    @property
    def offered_fps(self) -> float:
        return self.cameras * self.sample_fps

    def role(self, name: str) -> RoleUsage | None:
        return next((usage for usage in self.roles if usage.role == name), None)
