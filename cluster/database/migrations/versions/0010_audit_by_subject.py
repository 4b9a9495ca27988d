"""Issue 18, after review: an index on the audit log's (action, subject, seq), so that finding the newest entries of
one kind about one subject (where the last watch of a manifest stopped) reads those entries, not the whole log,
which is kept for ever. Only a new index.

Revision ID: 0010_audit_by_subject
Revises: 0009_social_posts
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import AUDIT_BY_SUBJECT_INDEX

revision = "0010_audit_by_subject"
down_revision = "0009_social_posts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("audit_log")}
    if AUDIT_BY_SUBJECT_INDEX not in present:
        op.create_index(AUDIT_BY_SUBJECT_INDEX, "audit_log", ["action", "subject", "seq"])
