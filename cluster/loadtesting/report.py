"""report.json: what a load test ran (the crowd, the ramp, the machine) and what each step measured.

A versioned pydantic model: `FORMAT` changes when a figure changes meaning, and `LoadReport.load`
refuses a file of another format, saying which it found, so `--compare` never compares figures that
mean different things.
"""

import os
import platform
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cluster.loadtesting.chaos_runs import ChaosFigures
from cluster.loadtesting.measurements import Accuracy, StepFigures
from cluster.loadtesting.ramp import RampPlan
from cluster.loadtesting.saturation import SaturationRule

FORMAT = "lfr-loadtest-report/1"


class Machine(BaseModel):
    """Where it ran, and how busy the machine was (1-minute load average) at the start and the end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cores: int
    platform: str
    python: str
    load_start: float
    load_end: float | None = None

    @classmethod
    def now(cls) -> "Machine":
        return cls(
            cores=os.cpu_count() or 1,
            platform=f"{platform.system()} {platform.release()} {platform.machine()}",
            python=platform.python_version(),
            load_start=os.getloadavg()[0],
        )

    def ended(self) -> "Machine":
        return self.model_copy(update={"load_end": os.getloadavg()[0]})


class CrowdSummary(BaseModel):
    """The recorded crowd replayed: its folder, cameras, length and watchlist."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: str
    cameras: int
    seconds: float
    fps: float
    watchlist: tuple[str, ...]
    enrolled_photos: int


class LoadReport(BaseModel):
    """One load test: see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    command: tuple[str, ...]
    started_at: float
    wall_seconds: float
    machine: Machine
    crowd: CrowdSummary
    plan: RampPlan
    saturation: SaturationRule
    steps: tuple[StepFigures, ...] = Field(min_length=1)
    accuracy: Accuracy
    """The whole run's alerts, the last tracklets' included, over every camera that ran."""
    chaos: tuple[ChaosFigures, ...] = ()
    """The `--chaos` scenarios, in the order they ran after the ramp."""

    @property
    def saturated_at(self) -> StepFigures | None:
        return next((step for step in self.steps if step.saturated), None)

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "LoadReport":
        """Read a report; ValueError naming the file and what is wrong with it."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the load test report {path}: {exc.strerror}") from exc
        try:
            found = _Format.model_validate_json(text).format
        except ValidationError as exc:
            raise ValueError(f"{path} is not a load test report (report.json of `lfr loadtest`): {exc}") from exc
        if found != FORMAT:
            raise ValueError(f"{path} is a {found!r} report; this lfr reads {FORMAT!r}: run the baseline again")
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ValueError(f"{path}: malformed load test report: {exc}") from exc


class _Format(BaseModel):
    """Only the format field, read first so that another version's report is named as such."""

    model_config = ConfigDict(extra="ignore")

    format: str
