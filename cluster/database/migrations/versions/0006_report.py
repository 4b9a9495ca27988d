"""Issue 17: what enrolment records about each watchlist person (category, optional attributes such as sex and
ethnicity), so a deployment's report can break its true and false alerts down by them. Only a new table.

Revision ID: 0006_report
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import REVISION_6_TABLES, revision_6_report_tables

revision = "0006_report"
down_revision = "0005_suppression"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    tables = revision_6_report_tables().tables
    for name in REVISION_6_TABLES:
        if not inspector.has_table(name):
            tables[name].create(connection)
