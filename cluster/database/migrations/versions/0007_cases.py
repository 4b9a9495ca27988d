"""Issue 17: retrospective and social searches' results as cases. Only new tables: `cases` (a search's
authorisation, provenance and hold) and `case_items` (one candidate each, with its crop and decision).

Revision ID: 0007_cases
Revises: 0006_report
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import REVISION_7_TABLES, revision_7_case_tables

revision = "0007_cases"
down_revision = "0006_report"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    tables = revision_7_case_tables().tables
    for name in REVISION_7_TABLES:
        if not inspector.has_table(name):
            tables[name].create(connection)
