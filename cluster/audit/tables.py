"""The audit log's tables: the entries, and the head record that says where the chain ends and with which key.

The tables are made and changed by the records schema's migrations (`cluster.database.migrations`);
these definitions are what the code reads and writes, and a test checks the two agree.
"""

import sqlalchemy as sa

HEAD_ROW_ID = 1

metadata = sa.MetaData()

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("subject", sa.String, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("key_id", sa.String, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Index("audit_log_by_action_subject", "action", "subject", "seq"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String, nullable=False),
    sa.Column("seal", sa.String(64), nullable=False),
    sa.CheckConstraint(f"id = {HEAD_ROW_ID}", name="audit_head_single_row"),
)
