"""`--compare`: a load test's report against a baseline's, for CI: which figures regressed beyond a tolerance.

Steps are matched by their load (cameras and sample rate). Per matched step: throughput (frames/s,
faces/s) must not fall, latency (frame-to-result p50/p95/p99, face-to-alert p95/p99, gallery search
p99) must not rise, by more than `tolerance` of the baseline's figure; and over the whole run the
alerts' precision and recall must not fall by more than `tolerance` (absolute, as they are shares).
A figure the baseline has and this report lacks (a step never reached, a latency with no samples)
is a regression too, named as missing. Better figures never fail.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cluster.loadtesting.measurements import StepFigures
from cluster.loadtesting.report import LoadReport

DEFAULT_TOLERANCE = 0.15


class Better(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True)
class StepFigure:
    name: str
    better: Better
    read: Callable[[StepFigures], float | None]


STEP_FIGURES: tuple[StepFigure, ...] = (
    StepFigure("frames/s", Better.HIGHER, lambda s: s.frames_per_s),
    StepFigure("faces/s", Better.HIGHER, lambda s: s.faces_per_s),
    StepFigure("frame latency p50", Better.LOWER, lambda s: s.frame_latency.p50),
    StepFigure("frame latency p95", Better.LOWER, lambda s: s.frame_latency.p95),
    StepFigure("frame latency p99", Better.LOWER, lambda s: s.frame_latency.p99),
    StepFigure("alert latency p95", Better.LOWER, lambda s: s.alert_latency.p95),
    StepFigure("alert latency p99", Better.LOWER, lambda s: s.alert_latency.p99),
    StepFigure("gallery search p99", Better.LOWER, lambda s: s.gallery_search.p99),
)


@dataclass(frozen=True)
class Regression:
    """One figure that got worse beyond the tolerance, or went missing (`current` None)."""

    figure: str
    baseline: float
    current: float | None

    def describe(self) -> str:
        if self.current is None:
            return f"{self.figure}: missing (baseline {self.baseline:.4g})"
        change = (self.current - self.baseline) / self.baseline if self.baseline else float("inf")
        return f"{self.figure}: {self.baseline:.4g} -> {self.current:.4g} ({change:+.1%})"


@dataclass(frozen=True)
class Comparison:
    regressions: tuple[Regression, ...]
    compared: int
    """How many figures were compared (missing ones included)."""

    @property
    def passed(self) -> bool:
        return not self.regressions


def compare(baseline: LoadReport, current: LoadReport, tolerance: float = DEFAULT_TOLERANCE) -> Comparison:
    """`current` against `baseline`; see the module docstring."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance is a share of the baseline's figure, 0 to below 1 (0.15 = 15 %), got {tolerance}")
    regressions: list[Regression] = []
    compared = 0
    steps = {(step.cameras, step.sample_fps): step for step in current.steps}
    for base in baseline.steps:
        label = f"{base.cameras} cameras at {base.sample_fps:g} fps"
        step = steps.get((base.cameras, base.sample_fps))
        for figure in STEP_FIGURES:
            was = figure.read(base)
            if was is None:
                continue
            compared += 1
            now = None if step is None else figure.read(step)
            if now is None or _worse(was, now, figure.better, tolerance):
                regressions.append(Regression(f"{label}: {figure.name}", was, now))
    for name, was, now in (
        ("accuracy: precision", baseline.accuracy.precision, current.accuracy.precision),
        ("accuracy: recall", baseline.accuracy.recall, current.accuracy.recall),
    ):
        compared += 1
        if now < was - tolerance:
            regressions.append(Regression(name, was, now))
    for chaos in current.chaos:
        compared += 1
        if not chaos.nothing_lost:
            regressions.append(Regression(f"chaos {chaos.scenario}: recovered with nothing lost", 1.0, 0.0))
    return Comparison(tuple(regressions), compared)


def _worse(baseline: float, current: float, better: Better, tolerance: float) -> bool:
    if better is Better.HIGHER:
        return current < baseline * (1 - tolerance)
    return current > baseline * (1 + tolerance)
