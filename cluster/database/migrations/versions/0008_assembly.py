"""Issue 17: the deployment records say whether a deployment is at a protest or assembly, and list its exclusion
windows (times and reason, as JSON), for the public records. Two columns with defaults: existing records are
deployments not at an assembly, with no exclusion windows.

Revision ID: 0008_assembly
Revises: 0006_report
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_assembly"
down_revision = "0007_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("deployment_records")}
    with op.batch_alter_table("deployment_records") as batch:
        if "at_assembly" not in present:
            batch.add_column(sa.Column("at_assembly", sa.Boolean, nullable=False, server_default=sa.false()))
        if "exclusions" not in present:
            batch.add_column(sa.Column("exclusions", sa.Text, nullable=False, server_default="[]"))
