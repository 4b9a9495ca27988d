"""The watchlist catalogue's tables in the records database (revision 0003 creates them).

They sit beside the alerts and the audit log, so every node and process of a cluster reads and
writes one catalogue. Names carry a `watchlist_` prefix: the database is shared with other
records. Times are unix seconds (BigInteger: an expiry may lie past 2038).
"""

import sqlalchemy as sa

metadata = sa.MetaData()

BATCH_STATES = ("pending", "committed", "failed")

watchlists = sa.Table(
    "watchlists",
    metadata,
    sa.Column("watchlist_id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("authorised_by", sa.String, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)

batches = sa.Table(
    "watchlist_batches",
    metadata,
    sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
    sa.Column("batch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint(
        "state IN ({})".format(", ".join(f"'{state}'" for state in BATCH_STATES)), name="watchlist_batches_state_known"
    ),
)

versions = sa.Table(
    "watchlist_versions",
    metadata,
    sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("max_batch", sa.Integer, nullable=False),
    sa.Column("excluded_batches", sa.Text, nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("digest", sa.String, nullable=False),
    sa.Column("frozen_at", sa.BigInteger, nullable=False),
)

enrolled_photos = sa.Table(
    "watchlist_enrolled_photos",
    metadata,
    sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
    sa.Column("person_id", sa.String, primary_key=True),
    sa.Column("photo_sha256", sa.String(64), primary_key=True),
    sa.Column("face_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String, nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
)

version_entries = sa.Table(
    "watchlist_version_entries",
    metadata,
    sa.Column("watchlist_id", sa.String, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String, primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("fingerprint", sa.String, nullable=False),
    sa.ForeignKeyConstraint(
        ["watchlist_id", "number"], ["watchlist_versions.watchlist_id", "watchlist_versions.number"]
    ),
)

calibrations = sa.Table(
    "watchlist_calibrations",
    metadata,
    sa.Column("watchlist_id", sa.String, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("target_fpir", sa.Double, nullable=False),
    sa.Column("list_size", sa.Integer, nullable=False),
    sa.Column("per_pair_rate", sa.Double, nullable=False),
    sa.Column("expected_tpir", sa.Double, nullable=False),
    sa.Column("fusion", sa.String, nullable=False),
    sa.Column("cohort_digest", sa.String, nullable=False),
    sa.ForeignKeyConstraint(
        ["watchlist_id", "number"], ["watchlist_versions.watchlist_id", "watchlist_versions.number"]
    ),
)

people = sa.Table(
    "watchlist_people",
    metadata,
    sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
    sa.Column("person_id", sa.String, primary_key=True),
    sa.Column("category", sa.String, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("recorded_by", sa.String, nullable=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
)
"""What enrolment recorded about each person beyond their photos (revision 0006_report): the category and the
attributes a deployment's report breaks its alerts down by. Deleted with the person."""

TABLES = (watchlists, batches, versions, enrolled_photos, version_entries, calibrations)
"""Every catalogue table a per-host catalogue file held (and `lfr db import-catalogue` copies), parents first."""
