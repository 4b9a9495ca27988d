"""Issue 17: "not this person". A rejected alert leaves a suppression, its sightings lose their embeddings.

`suppressions` holds one pooled embedding per rejected alert (deleted when its deployment stops or
retention finds it too old); `suppressed_sightings` counts the repeats it kept from becoming alerts.
`sightings.embedding` may now be NULL: a rejected alert's sighting embeddings are deleted at once.

Revision ID: 0005_suppression
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import SUPPRESSION_TABLES, revision_5_suppression_tables

revision = "0005_suppression"
down_revision = "0004_auditor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    embedding = next(column for column in inspector.get_columns("sightings") if column["name"] == "embedding")
    if not embedding["nullable"]:
        with op.batch_alter_table("sightings") as batch:
            batch.alter_column("embedding", existing_type=sa.LargeBinary, nullable=True)
    tables = revision_5_suppression_tables().tables
    for name in SUPPRESSION_TABLES:
        if not inspector.has_table(name):
            tables[name].create(connection)
