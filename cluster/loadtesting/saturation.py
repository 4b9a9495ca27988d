"""When a load step counts as saturated, so the ramp stops there.

A step is saturated when the cluster drops more of the frames offered than `max_drop_rate` (by any
cause: full queues, stale frames, frames the camera evicted, failed requests), or when it processes
barely more frames per second than the step before although more were offered: throughput grew by
less than `min_gain` of what the extra load would have brought had it scaled. Either way more
cameras would only add drops and latency.
"""

from pydantic import BaseModel, ConfigDict, Field

from cluster.loadtesting.measurements import StepFigures


class SaturationRule(BaseModel):
    """The bounds; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drop_rate: float = Field(default=0.05, ge=0, le=1)
    min_gain: float = Field(default=0.25, ge=0, le=1)
    """Share of the extra offered frames/s that must show up as extra processed frames/s."""

    def reason(self, previous: StepFigures | None, step: StepFigures) -> str | None:
        """Why `step` is saturated, or None when the cluster still keeps up."""
        if step.drops.rate > self.max_drop_rate:
            return f"drop rate {step.drops.rate:.1%} is above {self.max_drop_rate:.1%}"
        if previous is None or step.offered_fps <= previous.offered_fps:
            return None
        expected = (step.offered_fps - previous.offered_fps) / previous.offered_fps * previous.frames_per_s
        gained = step.frames_per_s - previous.frames_per_s
        if gained < self.min_gain * expected:
            return (
                f"frames/s rose by {gained:.2f} ({previous.frames_per_s:.2f} -> {step.frames_per_s:.2f}) where"
                f" scaling would bring {expected:.2f} more; less than {self.min_gain:.0%} of that"
            )
        return None
