"""The alert store's tables: alerts, the sightings (with crops) that make them up, adjudications, the
"not this person" suppressions that rejections leave, and counts of purged alerts.

Crops and embeddings live in `sightings` and nowhere else, but for one pooled embedding per
rejected alert in `suppressions`: faces that matched nobody are never stored, a rejected alert's
sightings lose their embeddings at once, and an alert's faces go when the alert is purged. A
suppression's embedding goes when its deployment stops or retention finds it older than allowed.
What a purge leaves is a count per deployment and final state (`purged_alert_counts`), so a
deployment's published figures outlive its alerts.
"""

import sqlalchemy as sa

from cluster.alerts.model import AlertState

metadata = sa.MetaData()

_STATES = ", ".join(f"'{state.value}'" for state in AlertState)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String, primary_key=True),
    sa.Column("deployment_id", sa.String, nullable=False),
    sa.Column("person_id", sa.String, nullable=False),
    sa.Column("watchlist_id", sa.String, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("confidence", sa.Double, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("target_fpir", sa.Double),
    sa.Column("expected_tpir", sa.Double),
    sa.Column("held", sa.Boolean, nullable=False),
    sa.Column("held_reason", sa.Text),
    sa.Column("held_by", sa.String),
    sa.Column("held_at", sa.Double),
    sa.CheckConstraint(f"state IN ({_STATES})", name="alerts_state_known"),
    sa.Index("alerts_by_created", "created_at", "alert_id"),
    sa.Index("alerts_by_deployment", "deployment_id", "created_at", "alert_id"),
    sa.Index("alerts_by_state", "state", "created_at", "alert_id"),
    sa.Index("alerts_by_person", "person_id", "created_at"),
)

sightings = sa.Table(
    "sightings",
    metadata,
    sa.Column("sighting_id", sa.String, primary_key=True),
    sa.Column("alert_id", sa.String, sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False),
    sa.Column("camera_id", sa.String, nullable=False),
    sa.Column("person_id", sa.String, nullable=False),
    sa.Column("watchlist_id", sa.String, nullable=False),
    sa.Column("similarity", sa.Double, nullable=False),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("embedding", sa.LargeBinary),
    sa.Column("crop_jpeg", sa.LargeBinary),
    sa.Column("box_x1", sa.Double),
    sa.Column("box_y1", sa.Double),
    sa.Column("box_x2", sa.Double),
    sa.Column("box_y2", sa.Double),
    sa.Column("model_scores", sa.Text),
    sa.Index("sightings_by_alert", "alert_id"),
    sa.Index("sightings_by_camera", "camera_id", "alert_id"),
    sa.Index("sightings_by_last_seen", "last_seen"),
)

adjudications = sa.Table(
    "adjudications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String, sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("officer", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.CheckConstraint(f"state IN ({_STATES})", name="adjudications_state_known"),
    sa.Index("adjudications_by_alert", "alert_id", "id"),
)

purged_alert_counts = sa.Table(
    "purged_alert_counts",
    metadata,
    sa.Column("deployment_id", sa.String, primary_key=True),
    sa.Column("state", sa.String(16), primary_key=True),
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.CheckConstraint(f"state IN ({_STATES})", name="purged_alert_counts_state_known"),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("alert_id", sa.String, sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("deployment_id", sa.String, nullable=False),
    sa.Column("person_id", sa.String, nullable=False),
    sa.Column("watchlist_id", sa.String, nullable=False),
    sa.Column("embedding", sa.LargeBinary),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("officer", sa.String, nullable=False),
    sa.Column("ended_at", sa.Double),
    sa.Index("suppressions_by_entry", "deployment_id", "person_id", "watchlist_id"),
)

suppressed_sightings = sa.Table(
    "suppressed_sightings",
    metadata,
    sa.Column("sighting_id", sa.String, primary_key=True),
    sa.Column("alert_id", sa.String, sa.ForeignKey("suppressions.alert_id", ondelete="CASCADE"), nullable=False),
    sa.Column("deployment_id", sa.String, nullable=False),
    sa.Column("camera_id", sa.String, nullable=False),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("similarity", sa.Double, nullable=False),
    sa.Column("suppressed_at", sa.Double, nullable=False),
    sa.Index("suppressed_by_alert", "alert_id"),
    sa.Index("suppressed_by_deployment", "deployment_id"),
)
