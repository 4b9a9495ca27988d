"""The records tables as commit 2783d9c made them (before issue 14), with the audit log's genesis head.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from cluster.database.migrations.hooks import UpgradeRefused, upgrade_hooks
from cluster.database.migrations.layouts import AUDIT_HEAD_ROW_ID, revision_1_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    """Create the tables; those an unversioned database already holds (checked against this layout) are kept."""
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    tables = revision_1_tables()
    fresh_audit = not inspector.has_table("audit_head") and not inspector.has_table("audit_log")
    for table in tables.sorted_tables:
        if not inspector.has_table(table.name):
            table.create(connection)
    if fresh_audit:
        _genesis_head(connection, tables.tables["audit_head"])


def _genesis_head(connection: sa.Connection, audit_head: sa.Table) -> None:
    """A log is made with its head record, so a log whose head is later deleted shows as wiped."""
    hooks = upgrade_hooks()
    if hooks.head is None:
        raise UpgradeRefused("a new audit log needs its sealing key: open it with `lfr db upgrade` or an AuditLog")
    connection.execute(
        audit_head.insert().values(
            id=AUDIT_HEAD_ROW_ID, seq=0, hash=GENESIS_HASH, seal=hooks.head.first_seal(0, GENESIS_HASH)
        )
    )
