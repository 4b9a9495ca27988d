"""The ramp plan: the load steps of a load test, each a number of cameras at a sample rate, held for a while.

A ramp is written as values (`1 2 4 8`) or as a range that grows by a factor (`1-8x2`: 1 2 4 8) or by a
step (`2-8+2`: 2 4 6 8). Cameras or the sample rate ramp (one of the two, the other held); each step
must put more load on the cluster than the one before, since the test looks for the point where more
load stops bringing more throughput.
"""

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

RANGE = re.compile(r"^(?P<start>[0-9.]+)-(?P<stop>[0-9.]+)(?P<how>[x+])(?P<by>[0-9.]+)$")
MAX_STEPS = 64


class RampStep(BaseModel):
    """One load step: this many cameras, each sampled at this many frames per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: int = Field(ge=1)
    sample_fps: float = Field(gt=0)

    @property
    def offered_fps(self) -> float:
        """Frames per second the cameras offer the face service together."""
        return self.cameras * self.sample_fps


class RampPlan(BaseModel):
    """The steps, in order, and how long each is measured (after a warm-up once its cameras changed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[RampStep, ...] = Field(min_length=1, max_length=MAX_STEPS)
    step_seconds: float = Field(default=20.0, gt=0)
    warmup_seconds: float = Field(default=3.0, ge=0)
    """Not measured: new cameras connect, their first frames reach the service."""

    @model_validator(mode="after")
    def _rising(self) -> "RampPlan":
        for index, (before, step) in enumerate(zip(self.steps, self.steps[1:]), start=1):
            if step.cameras < before.cameras or step.sample_fps < before.sample_fps:
                raise ValueError(f"steps[{index}]: a ramp only adds load; it has fewer cameras or a lower rate")
            if step.offered_fps <= before.offered_fps:
                raise ValueError(f"steps[{index}]: the same load as steps[{index - 1}]; list each load once")
        return self

    @property
    def max_cameras(self) -> int:
        return max(step.cameras for step in self.steps)

    @classmethod
    def of(
        cls, cameras: Sequence[int], sample_fps: Sequence[float], step_seconds: float, warmup_seconds: float
    ) -> "RampPlan":
        """Cameras ramped at one rate, or one camera count at ramped rates."""
        if len(cameras) > 1 and len(sample_fps) > 1:
            raise ValueError("ramp cameras or the sample rate, not both: give one of them a single value")
        steps = [RampStep(cameras=count, sample_fps=fps) for count in cameras for fps in sample_fps]
        return cls(steps=tuple(steps), step_seconds=step_seconds, warmup_seconds=warmup_seconds)


def ramp_values(words: Sequence[str]) -> list[float]:
    """The values of a ramp written as numbers and ranges (`1 2 4`, `1-8x2`, `2-8+2`); ValueError says the form."""
    values: list[float] = []
    for word in words:
        for part in word.split(","):
            if part:
                values.extend(_expand(part))
    if not values:
        raise ValueError("an empty ramp: give values such as `1 2 4 8` or a range such as `1-8x2`")
    return values


def _expand(part: str) -> list[float]:
    matched = RANGE.match(part)
    if matched is None:
        try:
            return [float(part)]
        except ValueError:
            raise ValueError(
                f"ramp value {part!r} is neither a number nor a range START-STOPxFACTOR or START-STOP+STEP"
            ) from None
    start, stop, by = (float(matched[name]) for name in ("start", "stop", "by"))
    if start <= 0 or stop < start:
        raise ValueError(f"ramp range {part!r}: needs 0 < START <= STOP")
    if (matched["how"] == "x" and by <= 1) or (matched["how"] == "+" and by <= 0):
        raise ValueError(f"ramp range {part!r}: a factor must be above 1, a step above 0")
    values, value = [], start
    while value <= stop * (1 + 1e-9):
        values.append(round(value, 6))
        if len(values) > MAX_STEPS:
            raise ValueError(f"ramp range {part!r} has more than {MAX_STEPS} steps")
        value = value * by if matched["how"] == "x" else value + by
    return values
