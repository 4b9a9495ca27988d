"""`CameraTopology`: how long it takes to walk between any two cameras of a deployment.

Built from the cameras' neighbour lists (undirected: a pair listed on one side holds both ways;
when both sides list it, each direction keeps its own time). The shortest walking time between
two cameras is the shortest path over neighbours (Dijkstra, computed per source camera when
first asked and kept). Cameras with no path between them are unreachable: infinite time.
"""

import heapq
import math
from collections.abc import Iterable, Sequence

from cluster.cameras.config import CameraConfig, verify_cameras


class CameraTopology:
    """Shortest walking seconds between cameras."""

    def __init__(self, camera_ids: Iterable[str], walking_seconds: dict[tuple[str, str], float]) -> None:
        """`walking_seconds[(a, b)]`: seconds to walk from a to b directly; both cameras must be in `camera_ids`."""
        self.camera_ids = frozenset(camera_ids)
        self._edges: dict[str, list[tuple[str, float]]] = {c: [] for c in self.camera_ids}
        for (source, target), seconds in walking_seconds.items():
            unknown = {source, target} - self.camera_ids
            if unknown:
                raise ValueError(
                    f"walking time {source} -> {target} names unknown camera(s) {', '.join(sorted(unknown))};"
                    f" known: {', '.join(sorted(self.camera_ids))}"
                )
            if not math.isfinite(seconds) or seconds <= 0.0:
                raise ValueError(
                    f"walking time {source} -> {target} must be a positive number of seconds, got {seconds}"
                )
            self._edges[source].append((target, float(seconds)))
        self._shortest: dict[str, dict[str, float]] = {}

    @classmethod
    def from_config(cls, cameras: Sequence[CameraConfig]) -> "CameraTopology":
        """The topology of a deployment's cameras, checked as `verify_cameras` checks them."""
        verify_cameras(list(cameras))
        listed = {(c.id, n.camera_id): n.walking_seconds for c in cameras for n in c.neighbours}
        walking = dict(listed)
        for (source, target), seconds in listed.items():
            walking.setdefault((target, source), seconds)
        return cls((c.id for c in cameras), walking)

    def knows(self, camera_id: str) -> bool:
        return camera_id in self.camera_ids

    def min_travel_s(self, source: str, target: str) -> float:
        """Shortest walking seconds from `source` to `target`: 0 for the same camera, inf when unreachable."""
        for camera in (source, target):
            if camera not in self.camera_ids:
                raise ValueError(f"unknown camera '{camera}'; known: {', '.join(sorted(self.camera_ids))}")
        if source == target:
            return 0.0
        if source not in self._shortest:
            self._shortest[source] = self._dijkstra(source)
        return self._shortest[source].get(target, math.inf)

    def _dijkstra(self, source: str) -> dict[str, float]:
        best = {source: 0.0}
        frontier = [(0.0, source)]
        while frontier:
            seconds, camera = heapq.heappop(frontier)
            if seconds > best[camera]:
                continue
            for neighbour, step in self._edges[camera]:
                candidate = seconds + step
                if candidate < best.get(neighbour, math.inf):
                    best[neighbour] = candidate
                    heapq.heappush(frontier, (candidate, neighbour))
        return best
