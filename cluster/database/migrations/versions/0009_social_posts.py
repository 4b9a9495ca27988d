"""Issue 18: the ingested social-media posts (provenance, text, the triage score with its model and version, and
whether the post is flagged for an officer), kept as long as the post's faces. Only a new table.

Revision ID: 0009_social_posts
Revises: 0008_assembly
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import REVISION_9_TABLES, revision_9_social_posts_tables

revision = "0009_social_posts"
down_revision = "0008_assembly"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    tables = revision_9_social_posts_tables().tables
    for name in REVISION_9_TABLES:
        if not inspector.has_table(name):
            tables[name].create(connection)
