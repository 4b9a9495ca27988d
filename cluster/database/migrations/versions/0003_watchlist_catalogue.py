"""Issue 15: the watchlist catalogue moves into the records database, so every node and process shares one.

Until now each host kept its catalogue in a SQLite file of its own (`gallery.catalogue_path`), which
a second Ray node could not see. This revision only creates the empty tables; an existing catalogue
file is copied in, audited, by `lfr db import-catalogue PATH` (see `cluster.gallery.catalogue_import`).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import revision_3_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    for table in revision_3_tables().sorted_tables:
        if not inspector.has_table(table.name):
            table.create(connection)
