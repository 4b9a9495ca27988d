"""Issue 17: the deployment records, from which the public records list past and planned deployments, and the
counts of purged alerts per deployment and state, so their figures outlive the alerts.

Revision ID: 0004_auditor
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.layouts import revision_4_auditor_tables

revision = "0004_auditor"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    for table in revision_4_auditor_tables().sorted_tables:
        if not inspector.has_table(table.name):
            table.create(connection)
