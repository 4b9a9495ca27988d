"""`Fuser`: sightings from all cameras in, one alert per person's passage out.

A sighting joins an open alert when all hold: the same person and watchlist; its embedding is
within `fusion_threshold` (cosine) of the alert's pooled embedding (the frame-weighted mean of
its sightings'); and it fits the alert in time and space (`cluster.fusion.timing`). Among
several such alerts it joins the most similar; with none it raises a new alert. A sighting id
already held is a duplicate and changes nothing, so a camera may resend after a failure.

Alerts are indexed by (person, watchlist), so `add` costs O(open alerts of that person), not
O(all alerts). An alert stays in memory, open for fusion, until the newest sighting time seen
(the watermark, in event time, so that replays of recorded video fuse as live video does) is
`open_window_s` past its last sighting; an adjudicated alert (confirmed or rejected) stays
held for duplicate detection but takes no new sightings. An evicted alert's sighting ids are
forgotten with it: a sighting resent after the open window would raise a new alert. `restore`
rebuilds all of this from the stored alerts after a restart.

The Coordinator actor owns one Fuser and is its only caller, so there are no locks.
"""

import enum
import heapq
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import structlog

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.fusion.confidence import CameraEvidence, alert_confidence
from cluster.fusion.config import FusionConfig
from cluster.fusion.timing import fits_in_time
from cluster.fusion.topology import CameraTopology
from cluster.vision.face import EMBEDDING_SIZE

log = structlog.get_logger(__name__)


class FusionKind(enum.StrEnum):
    """What `Fuser.add` did with a sighting."""

    NEW_ALERT = "new_alert"
    MERGED = "merged"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, eq=False)
class FusionOutcome:
    """What `add` did with a sighting, and the alert as it now stands (to store and publish).

    For a duplicate, `alert` is the alert that already holds the sighting, unchanged.
    """

    kind: FusionKind
    sighting_id: str
    alert: Alert


class _HeldAlert:
    """One alert in memory, with what fusion needs to test and update it quickly."""

    def __init__(self, alert: Alert) -> None:
        self.alert = alert
        self.key = (alert.person_id, alert.watchlist_id)
        self.embedding_sum: np.ndarray = np.zeros(EMBEDDING_SIZE, dtype=np.float32)
        self.mean = self.embedding_sum
        self.cameras: dict[str, CameraEvidence] = {}
        for sighting in alert.sightings:
            self.absorb(sighting)

    @property
    def is_open(self) -> bool:
        return not self.alert.state.is_final

    def absorb(self, sighting: Sighting) -> None:
        """Add a sighting's embedding (unless deleted) and frames to the pooled figures (not to `alert`)."""
        if sighting.embedding is not None:
            self.embedding_sum = self.embedding_sum + np.float32(sighting.frames) * sighting.embedding
            norm = math.sqrt(float(self.embedding_sum @ self.embedding_sum))
            if norm > 0.0:
                self.mean = self.embedding_sum * np.float32(1.0 / norm)
        seen = self.cameras.get(sighting.camera_id)
        if seen is None:
            self.cameras[sighting.camera_id] = CameraEvidence(sighting.frames, sighting.similarity)
        else:
            self.cameras[sighting.camera_id] = CameraEvidence(
                seen.frames + sighting.frames, max(seen.best_similarity, sighting.similarity)
            )


class Fuser:
    """Fuses sightings into alerts of one deployment; `threshold` and `model` are recorded on each alert.

    threshold: the match-score threshold in force; perfect_score: the score of two identical faces
    on that scale (1 for a cosine), the top of the confidence margin; target_fpir and
    expected_tpir: what a calibrated threshold was computed for, recorded on each alert.
    """

    def __init__(
        self,
        topology: CameraTopology,
        config: FusionConfig | None = None,
        *,
        deployment_id: str,
        threshold: float,
        model: str,
        perfect_score: float = 1.0,
        target_fpir: float | None = None,
        expected_tpir: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (math.isfinite(threshold) and math.isfinite(perfect_score) and threshold < perfect_score):
            raise ValueError(
                f"threshold ({threshold}) must be a finite match score below that of identical faces ({perfect_score})"
            )
        if not deployment_id or not model:
            raise ValueError("deployment_id and model must be named: every alert records them")
        self.topology = topology
        self.config = config or FusionConfig()
        self.deployment_id = deployment_id
        self.threshold = threshold
        self.model = model
        self.perfect_score = perfect_score
        self.target_fpir = target_fpir
        self.expected_tpir = expected_tpir
        self._clock = clock
        self._held: dict[str, _HeldAlert] = {}
        self._open_by_key: dict[tuple[str, str], list[_HeldAlert]] = {}
        self._alert_of_sighting: dict[str, str] = {}
        self._expiry: list[tuple[float, str]] = []
        self._watermark = float("-inf")
        self._unknown_cameras: set[str] = set()

    @property
    def held_alerts(self) -> int:
        """Alerts in memory: open ones and adjudicated ones kept for duplicate detection."""
        return len(self._held)

    @property
    def open_alerts(self) -> int:
        """Alerts that can still take sightings."""
        return sum(len(alerts) for alerts in self._open_by_key.values())

    def alert(self, alert_id: str) -> Alert | None:
        """The alert as the fuser holds it, or None if it is not (or no longer) held."""
        held = self._held.get(alert_id)
        return held.alert if held else None

    def add(self, sighting: Sighting) -> FusionOutcome:
        """Fuse one sighting: a new alert, merged into an open alert, or a duplicate ignored."""
        known = self._alert_of_sighting.get(sighting.sighting_id)
        if known is not None:
            return FusionOutcome(FusionKind.DUPLICATE, sighting.sighting_id, self._held[known].alert)
        if sighting.embedding is None or not np.all(np.isfinite(sighting.embedding)):
            raise ValueError(
                f"sighting {sighting.sighting_id}: its embedding is missing or has non-finite values; drop it upstream"
            )
        if not self.topology.knows(sighting.camera_id) and sighting.camera_id not in self._unknown_cameras:
            self._unknown_cameras.add(sighting.camera_id)
            log.warning("sighting_from_unknown_camera", camera_id=sighting.camera_id, fuses="same camera only")
        self._watermark = max(self._watermark, sighting.last_seen)
        self._evict()
        target = self._best_open_alert(sighting)
        if target is None:
            return FusionOutcome(FusionKind.NEW_ALERT, sighting.sighting_id, self._raise_alert(sighting))
        target.absorb(sighting)
        target.alert = replace(
            target.alert,
            sightings=(*target.alert.sightings, sighting),
            confidence=alert_confidence(target.cameras.values(), self.threshold, self.perfect_score),
            updated_at=self._clock(),
        )
        self._remember(target, sighting)
        log.debug("sighting_merged", alert_id=target.alert.alert_id, sighting_id=sighting.sighting_id)
        return FusionOutcome(FusionKind.MERGED, sighting.sighting_id, target.alert)

    def holds(self, sighting_id: str) -> bool:
        """Whether a held alert already has this sighting (adding it again would be a duplicate)."""
        return sighting_id in self._alert_of_sighting

    def merge_target(self, sighting: Sighting) -> str | None:
        """The id of the open alert `sighting` would merge into now, or None; changes nothing."""
        if sighting.sighting_id in self._alert_of_sighting:
            return None
        target = self._best_open_alert(sighting)
        return None if target is None else target.alert.alert_id

    def restore(self, alerts: Iterable[Alert]) -> int:
        """Rebuild from stored alerts after a restart; returns how many are open for fusion.

        Their sightings become known, so a camera resending one gets a duplicate, and later
        sightings merge into them as before the restart. Only a fresh Fuser can be restored.
        """
        if self._held:
            raise ValueError(f"restore into a fresh Fuser: this one already holds {len(self._held)} alerts")
        for alert in alerts:
            if alert.deployment_id != self.deployment_id:
                raise ValueError(
                    f"alert {alert.alert_id} belongs to deployment '{alert.deployment_id}', not"
                    f" '{self.deployment_id}'; restore each deployment's Fuser from its own alerts"
                )
            if not alert.sightings:
                raise ValueError(f"alert {alert.alert_id} has no sighting; the alert store is inconsistent")
            if alert.alert_id in self._held:
                raise ValueError(f"alert {alert.alert_id} is given twice; restore each alert once")
            held = _HeldAlert(alert)
            self._held[alert.alert_id] = held
            if held.is_open:
                self._open_by_key.setdefault(held.key, []).append(held)
            for sighting in alert.sightings:
                self._remember(held, sighting)
            self._watermark = max(self._watermark, alert.last_seen)
        self._evict()
        return self.open_alerts

    def update_alert(self, alert: Alert) -> bool:
        """Take an alert's state, adjudications and hold as changed elsewhere (the officer's decision).

        A confirmed or rejected alert takes no further sightings; a rejected one's embeddings are
        dropped from memory too, as the store deleted them. False if the alert is not held.
        """
        held = self._held.get(alert.alert_id)
        if held is None:
            return False
        was_open = held.is_open
        held.alert = replace(held.alert, state=alert.state, adjudications=alert.adjudications, held=alert.held)
        if was_open and not held.is_open:
            self._close(held)
        if alert.state is AlertState.REJECTED:
            held.alert = replace(held.alert, sightings=tuple(replace(s, embedding=None) for s in held.alert.sightings))
            held.embedding_sum = held.mean = np.zeros(EMBEDDING_SIZE, dtype=np.float32)
        return True

    def _best_open_alert(self, sighting: Sighting) -> _HeldAlert | None:
        best, best_similarity = None, self.config.fusion_threshold
        for held in self._open_by_key.get((sighting.person_id, sighting.watchlist_id), ()):
            similarity = float(held.mean @ sighting.embedding)
            if similarity < best_similarity:
                continue
            if fits_in_time(held.alert.sightings, sighting, self.topology, self.config):
                best, best_similarity = held, similarity
        return best

    def _raise_alert(self, sighting: Sighting) -> Alert:
        now = self._clock()
        evidence = CameraEvidence(frames=sighting.frames, best_similarity=sighting.similarity)
        alert = Alert(
            alert_id=uuid.uuid4().hex,
            deployment_id=self.deployment_id,
            person_id=sighting.person_id,
            watchlist_id=sighting.watchlist_id,
            state=AlertState.NEW,
            sightings=(sighting,),
            confidence=alert_confidence([evidence], self.threshold, self.perfect_score),
            created_at=now,
            updated_at=now,
            threshold=self.threshold,
            model=self.model,
            target_fpir=self.target_fpir,
            expected_tpir=self.expected_tpir,
        )
        held = _HeldAlert(alert)
        self._held[alert.alert_id] = held
        self._open_by_key.setdefault(held.key, []).append(held)
        self._remember(held, sighting)
        log.info(
            "alert_raised", alert_id=alert.alert_id, camera_id=sighting.camera_id, sighting_id=sighting.sighting_id
        )
        return held.alert

    def _remember(self, held: _HeldAlert, sighting: Sighting) -> None:
        """Index the sighting's id and (re)schedule the alert's eviction after its last sighting."""
        alert_id = held.alert.alert_id
        if self._alert_of_sighting.setdefault(sighting.sighting_id, alert_id) != alert_id:
            log.warning("sighting_in_two_alerts", sighting_id=sighting.sighting_id, kept_in=alert_id)
        heapq.heappush(self._expiry, (held.alert.last_seen + self.config.open_window_s, alert_id))

    def _evict(self) -> None:
        """Forget alerts whose open window ended before the watermark (stale heap entries are skipped)."""
        while self._expiry and self._expiry[0][0] < self._watermark:
            expires_at, alert_id = heapq.heappop(self._expiry)
            held = self._held.get(alert_id)
            if held is None or held.alert.last_seen + self.config.open_window_s != expires_at:
                continue
            del self._held[alert_id]
            if held.is_open:
                self._close(held)
            for sighting in held.alert.sightings:
                if self._alert_of_sighting.get(sighting.sighting_id) == alert_id:
                    del self._alert_of_sighting[sighting.sighting_id]

    def _close(self, held: _HeldAlert) -> None:
        """Take an alert out of the fusion index (it stays held for duplicate detection until evicted)."""
        others = self._open_by_key[held.key]
        others.remove(held)
        if not others:
            del self._open_by_key[held.key]
