"""Where the live pipeline hands each frame's result: the hook the gallery's matcher plugs into.

A sink runs inside the camera's forwarder actor, one per camera, and is called once per result
in arrival order, with the frame's pixels for the moment of the call (to cut a crop of a possible
match; a sink must not keep them). It must be quick (it delays that camera's next result, never
the others'), and it owns what it keeps: the default keeps counts only, never a face or a pixel.
`tick(now)` is called while no result comes (`cluster.live.silence`), so that what a sink keeps
for a time expires on time when the camera goes silent. `close()` is called once when the camera
stops.

A sink's summary has the sink's own type (`SinkSummary` here, `MatchingSummary` for the
matching sink), so whoever reads a pipeline's summaries knows their type from the sink factory
it started the pipeline with.
"""

from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from cluster.live.face_service import FrameResult

SummaryT_co = TypeVar("SummaryT_co", covariant=True)


class ResultSink(Protocol[SummaryT_co]):
    """Receives every result of one camera; `cluster.live.matching.MatchingSink` is the matching one."""

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None: ...

    def tick(self, now: float) -> None:
        """No result came for a while: the wall-clock time (unix seconds), to expire what is overdue."""
        ...

    def close(self) -> None: ...

    def summary(self) -> SummaryT_co:
        """The sink's own figures (a frozen dataclass of counts, nothing of any face), for the run summary."""
        ...


@dataclass(frozen=True)
class SinkSummary:
    """What the default sink saw of one camera: counts only."""

    camera_id: str
    results: int
    errors: int
    faces: int
    last_seq: int | None


class SummarySink:
    """The default sink: counts results, failed frames and faces. The class is its own factory (camera id -> sink)."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._results = 0
        self._errors = 0
        self._faces = 0
        self._last_seq: int | None = None

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None:
        self._results += 1
        self._errors += 0 if result.ok else 1
        self._faces += len(result.faces)
        self._last_seq = result.seq

    def tick(self, now: float) -> None:
        """Nothing expires: only counts are kept."""

    def close(self) -> None:
        """Nothing to finish: the summary stays readable."""

    def summary(self) -> SinkSummary:
        return SinkSummary(
            camera_id=self.camera_id,
            results=self._results,
            errors=self._errors,
            faces=self._faces,
            last_seq=self._last_seq,
        )
