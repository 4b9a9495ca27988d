"""The records tables as each revision leaves them, frozen here so later changes to the live models cannot alter
what an old revision creates, and so an unversioned database can be matched against them.

Revision 1 is the schema at commit 2783d9c (before issue 14); revision 2 adds what issue 14 added;
revision 3 adds the watchlist catalogue, moved out of its per-host SQLite file (issue 15). Issue 17:
0004_auditor adds the deployment records the public records are read from and the purged alerts' counts;
0005_suppression adds the "not this person" suppressions (and lets a sighting's embedding be deleted);
0006_report what enrolment records about each watchlist person, for the deployment report; 0007_cases the
cases of retrospective and social searches and their candidates; 0008_assembly whether a recorded deployment
is at a protest or assembly, and its exclusion windows. Issue 18: 0009_social_posts the ingested social-media
posts (provenance, text, triage score and flag). 0010_audit_by_subject only adds an index to the audit log, so
its layout is 0009's.
"""

import sqlalchemy as sa

AUDIT_HEAD_ROW_ID = 1
ALERT_STATES = ("new", "acknowledged", "confirmed", "rejected")


def revision_1_tables() -> sa.MetaData:
    """Every records table as commit 2783d9c created it (alerts, events, audit, users and keys, status board)."""
    metadata = sa.MetaData()
    states = ", ".join(f"'{state}'" for state in ALERT_STATES)
    sa.Table(
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
        sa.CheckConstraint(f"state IN ({states})", name="alerts_state_known"),
        sa.Index("alerts_by_created", "created_at", "alert_id"),
        sa.Index("alerts_by_deployment", "deployment_id", "created_at", "alert_id"),
        sa.Index("alerts_by_state", "state", "created_at", "alert_id"),
        sa.Index("alerts_by_person", "person_id", "created_at"),
    )
    sa.Table(
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
        sa.Column("embedding", sa.LargeBinary, nullable=False),
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
    sa.Table(
        "adjudications",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String, sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("officer", sa.String, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.CheckConstraint(f"state IN ({states})", name="adjudications_state_known"),
        sa.Index("adjudications_by_alert", "alert_id", "id"),
    )
    sa.Table(
        "alert_events",
        metadata,
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String, nullable=False),
        sa.Column("deployment_id", sa.String, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "audit_log",
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("key_id", sa.String, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    sa.Table(
        "audit_head",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("seal", sa.String(64), nullable=False),
        sa.CheckConstraint(f"id = {AUDIT_HEAD_ROW_ID}", name="audit_head_single_row"),
    )
    sa.Table(
        "api_users",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
    )
    sa.Table(
        "api_keys",
        metadata,
        sa.Column("key_id", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(64), sa.ForeignKey("api_users.name"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("revoked_at", sa.Double),
        sa.Column("revoked_by", sa.String),
        sa.Index("api_keys_by_name", "name"),
    )
    sa.Table(
        "deployment_status",
        metadata,
        sa.Column("deployment_id", sa.String, primary_key=True),
        sa.Column("published_at", sa.Double, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
    )
    return metadata


def revision_3_tables() -> sa.MetaData:
    """The watchlist catalogue's tables as revision 3 creates them."""
    metadata = sa.MetaData()
    sa.Table(
        "watchlists",
        metadata,
        sa.Column("watchlist_id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("authorised_by", sa.String, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "watchlist_batches",
        metadata,
        sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
        sa.Column("batch", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("state IN ('pending', 'committed', 'failed')", name="watchlist_batches_state_known"),
    )
    sa.Table(
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
    sa.Table(
        "watchlist_enrolled_photos",
        metadata,
        sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
        sa.Column("person_id", sa.String, primary_key=True),
        sa.Column("photo_sha256", sa.String(64), primary_key=True),
        sa.Column("face_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String, nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
    )
    version = ["watchlist_versions.watchlist_id", "watchlist_versions.number"]
    sa.Table(
        "watchlist_version_entries",
        metadata,
        sa.Column("watchlist_id", sa.String, primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String, primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.ForeignKeyConstraint(["watchlist_id", "number"], version),
    )
    sa.Table(
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
        sa.ForeignKeyConstraint(["watchlist_id", "number"], version),
    )
    return metadata


def revision_4_auditor_tables() -> sa.MetaData:
    """The deployment records' table and the purged alerts' counts as revision 0004_auditor creates them."""
    metadata = sa.MetaData()
    states = ", ".join(f"'{state}'" for state in ALERT_STATES)
    sa.Table(
        "purged_alert_counts",
        metadata,
        sa.Column("deployment_id", sa.String, primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.CheckConstraint(f"state IN ({states})", name="purged_alert_counts_state_known"),
    )
    sa.Table(
        "deployment_records",
        metadata,
        sa.Column("deployment_id", sa.String(64), primary_key=True),
        sa.Column("place", sa.String, nullable=False),
        sa.Column("starts_at", sa.Double, nullable=False),
        sa.Column("ends_at", sa.Double, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("signage_notice", sa.Text, nullable=False),
        sa.Column("watchlist_version", sa.String, nullable=False),
        sa.Column("recorded_at", sa.Double, nullable=False),
        sa.Column("recorded_by", sa.String, nullable=False),
        sa.Index("deployment_records_by_start", "starts_at"),
    )
    return metadata


def revision_5_suppression_tables() -> sa.MetaData:
    """The "not this person" tables as revision 0005_suppression creates them (issue 17)."""
    metadata = sa.MetaData()
    sa.Table("alerts", metadata, sa.Column("alert_id", sa.String, primary_key=True))
    sa.Table(
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
    sa.Table(
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
    return metadata


SUPPRESSION_TABLES = ("suppressions", "suppressed_sightings")
"""The tables revision 0005_suppression adds (the `alerts` stub above only anchors their foreign keys)."""


def revision_6_report_tables() -> sa.MetaData:
    """The table revision 0006_report adds: each watchlist person's category and recorded attributes."""
    metadata = sa.MetaData()
    sa.Table("watchlists", metadata, sa.Column("watchlist_id", sa.String, primary_key=True))
    sa.Table(
        "watchlist_people",
        metadata,
        sa.Column("watchlist_id", sa.String, sa.ForeignKey("watchlists.watchlist_id"), primary_key=True),
        sa.Column("person_id", sa.String, primary_key=True),
        sa.Column("category", sa.String, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.String, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
    )
    return metadata


REVISION_6_TABLES = ("watchlist_people",)
"""The table revision 0006_report adds (the `watchlists` stub above only anchors its foreign key)."""


def revision_7_case_tables() -> sa.MetaData:
    """The tables revision 0007_cases adds: retrospective and social searches' cases and their candidates."""
    metadata = sa.MetaData()
    sa.Table(
        "cases",
        metadata,
        sa.Column("case_id", sa.String, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("officer", sa.String, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("opened_at", sa.Double, nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("query_digest", sa.String, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("threshold", sa.Double, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("sources_count", sa.Integer, nullable=False),
        sa.Column("sources_digest", sa.String, nullable=False),
        sa.Column("faces_seen", sa.Integer, nullable=False),
        sa.Column("reports", sa.Text, nullable=False),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("held_by", sa.String),
        sa.Column("held_reason", sa.Text),
        sa.Column("held_at", sa.Double),
        sa.CheckConstraint("kind IN ('retrospective', 'social')", name="cases_kind_known"),
        sa.Index("cases_by_opened", "opened_at", "case_id"),
    )
    sa.Table(
        "case_items",
        metadata,
        sa.Column("case_id", sa.String, sa.ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("frame_index", sa.Integer),
        sa.Column("frame_time_s", sa.Double),
        sa.Column("box", sa.Text),
        sa.Column("match_kind", sa.String(32), nullable=False),
        sa.Column("match_id", sa.String, nullable=False),
        sa.Column("person_id", sa.String, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("threshold", sa.Double, nullable=False),
        sa.Column("model_scores", sa.Text, nullable=False),
        sa.Column("crop_jpeg", sa.LargeBinary),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String),
        sa.Column("decision_reason", sa.Text),
        sa.Column("decided_at", sa.Double),
        sa.CheckConstraint("state IN ('pending', 'confirmed', 'rejected')", name="case_items_state_known"),
        sa.CheckConstraint("match_kind IN ('watchlist_entry', 'social_face')", name="case_items_match_kind_known"),
    )
    return metadata


def revision_9_social_posts_tables() -> sa.MetaData:
    """The table revision 0009_social_posts adds: each ingested post, its text and its triage."""
    metadata = sa.MetaData()
    sa.Table(
        "social_posts",
        metadata,
        sa.Column("row_id", sa.String(32), primary_key=True),
        sa.Column("ingest_id", sa.String, nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("post_id", sa.String, nullable=False),
        sa.Column("author", sa.String, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("posted_at", sa.BigInteger, nullable=False),
        sa.Column("place", sa.String, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("media", sa.Integer, nullable=False),
        sa.Column("faces", sa.Integer, nullable=False),
        sa.Column("triage_score", sa.Double),
        sa.Column("triage_model", sa.String, nullable=False),
        sa.Column("triage_model_version", sa.String, nullable=False),
        sa.Column("triage_threshold", sa.Double, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("authorised_by", sa.String, nullable=False),
        sa.Column("ingested_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Index("social_posts_by_post", "platform", "post_id"),
        sa.Index("social_posts_by_ingest", "ingest_id"),
        sa.Index("social_posts_by_expiry", "expires_at"),
        sa.Index("social_posts_flagged", "flagged", "posted_at"),
    )
    return metadata


REVISION_7_TABLES = ("cases", "case_items")
"""The tables revision 0007_cases adds."""


REVISION_9_TABLES = ("social_posts",)
"""The table revision 0009_social_posts adds."""


AUDIT_BY_SUBJECT_INDEX = "audit_log_by_action_subject"
"""The audit log's index on (action, subject, seq) that revision 0010_audit_by_subject adds."""


REVISION_2_COLUMNS = {"api_keys": ("expires_at",), "audit_head": ("key_id",)}
"""The columns issue 14 added (revision 2), by table."""

REVISION_8_COLUMNS = {"deployment_records": ("at_assembly", "exclusions")}
"""The columns revision 0008_assembly adds, by table (their definitions are in the revision itself)."""


def columns_by_revision() -> dict[str, dict[str, frozenset[str]]]:
    """For each revision, the column names of each table it holds."""
    first = {table.name: frozenset(table.columns.keys()) for table in revision_1_tables().sorted_tables}
    second = {name: columns | set(REVISION_2_COLUMNS.get(name, ())) for name, columns in first.items()}
    third = second | {table.name: frozenset(table.columns.keys()) for table in revision_3_tables().sorted_tables}
    fourth = third | {
        table.name: frozenset(table.columns.keys()) for table in revision_4_auditor_tables().sorted_tables
    }
    added = revision_5_suppression_tables().tables
    suppression = fourth | {name: frozenset(added[name].columns.keys()) for name in SUPPRESSION_TABLES}
    report = revision_6_report_tables().tables
    sixth = suppression | {name: frozenset(report[name].columns.keys()) for name in REVISION_6_TABLES}
    case_tables = revision_7_case_tables().tables
    seventh = sixth | {name: frozenset(case_tables[name].columns.keys()) for name in REVISION_7_TABLES}
    eighth = seventh | {name: seventh[name] | set(columns) for name, columns in REVISION_8_COLUMNS.items()}
    posts = revision_9_social_posts_tables().tables
    ninth = eighth | {name: frozenset(posts[name].columns.keys()) for name in REVISION_9_TABLES}
    return {
        "0001": first,
        "0002": second,
        "0003": third,
        "0004_auditor": fourth,
        "0005_suppression": suppression,
        "0006_report": sixth,
        "0007_cases": seventh,
        "0008_assembly": eighth,
        "0009_social_posts": ninth,
        "0010_audit_by_subject": ninth,
    }
