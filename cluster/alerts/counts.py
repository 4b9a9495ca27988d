"""What the store reports: a deployment's alert figures, and what a purge removed."""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AlertStats:
    """A deployment's alerts by state, for the accuracy and bias reporting a deployment owes the public.

    Counts are of the alerts stored unless the store was asked to count purged ones too
    (`AlertStore.stats(with_purged=True)`, which the public records use).

    false_alert_rate: rejected / (confirmed + rejected), the share of adjudicated alerts that were
    wrong; None until an alert has been decided. For the rate per face seen (the figure the NPL
    and the Met publish), divide `rejected` by the deployment's count of faces seen.

    suppressed_repeats: sightings of a person an officer had rejected ("not this person") that were
    counted instead of alerted. They are not alerts, so they change neither figure above; they are
    reported beside them because without the suppression each would have been a repeat false alert.
    rejected_by_reason: the rejected alerts counted by the reason the officer gave.
    """

    deployment_id: str
    alerts: int
    new: int
    acknowledged: int
    confirmed: int
    rejected: int
    held: int
    suppressed_repeats: int = 0
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)

    @property
    def adjudicated(self) -> int:
        return self.confirmed + self.rejected

    @property
    def false_alert_rate(self) -> float | None:
        return self.rejected / self.adjudicated if self.adjudicated else None

    def false_alerts_per_face(self, faces_seen: int) -> float:
        """False alerts per face seen by the deployment's cameras."""
        if faces_seen < 1:
            raise ValueError(f"faces_seen must be >= 1, got {faces_seen}")
        return self.rejected / faces_seen


@dataclass(frozen=True)
class PurgeResult:
    """What one purge deleted (crops: sightings that carried a face crop), and what holds kept.

    crops_erased: whether what was deleted is also gone from the database files; False raises
    the alarm that deleted crops may still be on disk (a reader blocked the erasure; `erasure`
    says how), and the next purge tries again.
    """

    cutoff: float
    alerts: int
    sightings: int
    crops: int
    adjudications: int
    held_kept: int
    crops_erased: bool
    erasure: str


@dataclass(frozen=True)
class SuppressionEnd:
    """Suppression embeddings deleted (a deployment stopped, or retention), and whether erased from the files."""

    embeddings_deleted: int
    erased: bool


@dataclass(frozen=True)
class RejectionExpiry:
    """What retention took from rejected alerts: crops past the oversight period, suppression embeddings."""

    crops: int
    suppression_embeddings: int
    erased: bool
