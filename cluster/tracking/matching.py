"""Searching a frame's ready tracklets against the watchlist and answering the tracker.

One batched search for all tracklets ready at once; each gets the best candidate at or above
the threshold in force, or none, which deletes it. A tracklet whose decision timed out while it
waited (the tracker already deleted it) is skipped.
"""

from collections.abc import Sequence

import numpy as np

from cluster.alerts.model import Sighting
from cluster.tracking.candidate import WatchlistMatcher, best_candidate
from cluster.tracking.tracker import ReadyTracklet, Tracker, UnknownTrackletError


def match_and_decide(
    tracker: Tracker, ready: Sequence[ReadyTracklet], matcher: WatchlistMatcher, threshold: float
) -> list[Sighting]:
    """Search `ready` with `matcher`, decide each tracklet on `tracker`; the sightings of those that matched."""
    if not ready:
        return []
    models = sorted(ready[0].extra_embeddings)
    extra = {model: np.stack([r.extra_embeddings[model] for r in ready]) for model in models}
    embeddings = np.stack([r.embedding for r in ready])
    answers = matcher.match(embeddings, extra or None)
    if len(answers) != len(ready):
        raise ValueError(
            f"the matcher returned {len(answers)} candidate lists for {len(ready)} tracklets; it must return one"
            " list (possibly empty) per embedding row"
        )
    sightings = []
    for tracklet, candidates in zip(ready, answers):
        try:
            sighting = tracker.decide(tracklet.tracklet_id, best_candidate(candidates, threshold))
        except UnknownTrackletError:
            continue
        if sighting is not None:
            sightings.append(sighting)
    return sightings
