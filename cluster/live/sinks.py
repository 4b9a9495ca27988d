"""Where the live pipeline hands each frame's result: the hook the gallery's matcher plugs into.

A sink runs inside the camera's forwarder actor, one per camera, and is called once per result
in arrival order, with the frame's pixels for the moment of the call (to cut a crop of a possible
match; a sink must not keep them). It must be quick (it delays that camera's next result, never
the others'), and it owns what it keeps: the default keeps counts and a few recent results,
never pixels. `close()` is called once when the camera stops.
"""

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cluster.live.face_service import FrameResult

RECENT_RESULTS = 16


class ResultSink(Protocol):
    """Receives every result of one camera; `cluster.live.matching.MatchingSink` is the matching one."""

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def summary(self) -> object:
        """The sink's own figures (a frozen dataclass), for the run summary."""
        ...


@dataclass(frozen=True)
class SinkSummary:
    """What the default sink saw."""

    results: int
    errors: int
    faces: int
    last_seq: int | None


class SummarySink:
    """The default sink: counts results and faces and keeps the last few results, in bounded memory."""

    def __init__(self, keep: int = RECENT_RESULTS) -> None:
        self.recent: deque[FrameResult] = deque(maxlen=keep)
        self._results = 0
        self._errors = 0
        self._faces = 0

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None:
        self._results += 1
        self._errors += 0 if result.ok else 1
        self._faces += len(result.faces)
        self.recent.append(result)

    def close(self) -> None:
        """Nothing to finish: the summary stays readable."""

    def summary(self) -> SinkSummary:
        last = self.recent[-1].seq if self.recent else None
        return SinkSummary(results=self._results, errors=self._errors, faces=self._faces, last_seq=last)
