"""Whether a new sighting fits an alert's sightings in time and space.

Against every sighting of the alert on another camera, the gap between them must be at least
`min_travel_fraction` of the shortest walking time in that direction (nobody is faster), and
the cameras must be connected at all. And at least one sighting of the alert must be near in
time: on the same camera within `same_camera_window_s`, or on another within `max_gap_s`.
Sightings on one camera may overlap in time (one person's track split in two).
"""

import math
from collections.abc import Iterable

from cluster.alerts.model import Sighting
from cluster.fusion.config import FusionConfig
from cluster.fusion.topology import CameraTopology


def sighting_gap(earlier: Sighting, later: Sighting) -> float:
    """Seconds between the two sightings' time spans, in either order; negative by their overlap."""
    if later.first_seen >= earlier.last_seen:
        return later.first_seen - earlier.last_seen
    if earlier.first_seen >= later.last_seen:
        return earlier.first_seen - later.last_seen
    return max(earlier.first_seen, later.first_seen) - min(earlier.last_seen, later.last_seen)


def travel_s(topology: CameraTopology, first: Sighting, then: Sighting) -> float:
    """Shortest walking seconds between the cameras of two sightings, in the order they happened.

    inf when either camera is outside the topology or no path joins them; overlapping spans take
    the shorter direction.
    """
    if not (topology.knows(first.camera_id) and topology.knows(then.camera_id)):
        return math.inf
    forward = topology.min_travel_s(first.camera_id, then.camera_id)
    backward = topology.min_travel_s(then.camera_id, first.camera_id)
    if then.first_seen >= first.last_seen:
        return forward
    if first.first_seen >= then.last_seen:
        return backward
    return min(forward, backward)


def fits_in_time(sightings: Iterable[Sighting], new: Sighting, topology: CameraTopology, config: FusionConfig) -> bool:
    """True if `new` is physically possible after or before every sighting and near at least one."""
    near = False
    for sighting in sightings:
        gap = sighting_gap(sighting, new)
        if sighting.camera_id == new.camera_id:
            near = near or gap <= config.same_camera_window_s
            continue
        travel = travel_s(topology, sighting, new)
        if math.isinf(travel) or gap < travel * config.min_travel_fraction:
            return False
        near = near or gap <= config.max_gap_s
    return near
