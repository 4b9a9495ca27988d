"""`StageTimes`: what one batch spent in each model stage, kept apart from the models.

Its own module so that the face service's typed results can be imported (by forwarders and
trackers) without importing torch, which costs each such process most of a gigabyte.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StageTimes:
    """Seconds one `process_timed` call spent in each stage, for the face service's per-frame timings."""

    detect_s: float
    align_s: float
    embed_s: float
