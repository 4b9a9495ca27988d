"""The case tables: one row per case (authorisation, provenance, hold) and one per candidate (crop, decision).

Crops live in `case_items` and nowhere else; they go when retention purges the case (a held case
is kept). Faces that matched nobody are never stored.
"""

import sqlalchemy as sa

from cluster.cases.model import CaseKind, ItemState, MatchKind

metadata = sa.MetaData()


def _known(column: str, values: type[CaseKind] | type[ItemState] | type[MatchKind]) -> str:
    return f"{column} IN ({', '.join(repr(value.value) for value in values)})"


cases = sa.Table(
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
    sa.CheckConstraint(_known("kind", CaseKind), name="cases_kind_known"),
    sa.Index("cases_by_opened", "opened_at", "case_id"),
)

case_items = sa.Table(
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
    sa.CheckConstraint(_known("state", ItemState), name="case_items_state_known"),
    sa.CheckConstraint(_known("match_kind", MatchKind), name="case_items_match_kind_known"),
)

TABLES = (cases, case_items)
