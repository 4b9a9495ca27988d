"""Issue 14: the audit head names the key that seals the log, and API keys expire.

The head's key id is taken from the entry it points at (the key the chain was written with), or,
for a log with no entries yet, from whichever key its genesis seal proves; the head is then sealed
again over the new payload that includes the key id, after its old seal has been checked, so the
chain verifies and appends with the same key carry on. API keys issued before keys expired get a
lifetime counted from when they were issued (expired ones stop at once).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
import structlog
from alembic import op

from cluster.database.migrations.hooks import UpgradeHooks, UpgradeRefused, upgrade_hooks

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SECONDS_PER_DAY = 86_400

log = structlog.get_logger(__name__)


def upgrade() -> None:
    hooks = upgrade_hooks()
    _expire_api_keys(hooks)
    _key_id_in_audit_head(hooks)


def _has_column(table: str, column: str) -> bool:
    """Whether an unversioned database already has the column (issue 14's code added some on the fly)."""
    return any(found["name"] == column for found in sa.inspect(op.get_bind()).get_columns(table))


def _expire_api_keys(hooks: UpgradeHooks) -> None:
    if _has_column("api_keys", "expires_at"):
        return
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.Double))
    keys = sa.table("api_keys", sa.column("created_at", sa.Double), sa.column("expires_at", sa.Double))
    connection = op.get_bind()
    count = connection.execute(sa.select(sa.func.count()).select_from(keys)).scalar_one()
    if not count:
        return
    if hooks.key_lifetime_days is None:
        raise UpgradeRefused("API keys issued before keys expired need a lifetime: run `lfr db upgrade`")
    lifetime_s = hooks.key_lifetime_days * SECONDS_PER_DAY
    connection.execute(keys.update().values(expires_at=keys.c.created_at + lifetime_s))
    log.warning("api_keys_given_expiry", keys=count, lifetime_days=hooks.key_lifetime_days)


def _key_id_in_audit_head(hooks: UpgradeHooks) -> None:
    if _has_column("audit_head", "key_id"):
        return
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("key_id", sa.String))
    connection = op.get_bind()
    head_table = sa.table(
        "audit_head", sa.column("seq"), sa.column("hash"), sa.column("key_id"), sa.column("seal"), sa.column("id")
    )
    entries = sa.table("audit_log", sa.column("seq"), sa.column("key_id"))
    head = connection.execute(
        sa.select(head_table.c.id, head_table.c.seq, head_table.c.hash, head_table.c.seal)
    ).first()
    if head is not None:
        key_id, seal = _resealed(connection, entries, hooks, head)
        connection.execute(head_table.update().where(head_table.c.id == head.id).values(key_id=key_id, seal=seal))
    with op.batch_alter_table("audit_head") as batch:
        batch.alter_column("key_id", existing_type=sa.String, nullable=False)


def _resealed(connection: sa.Connection, entries: sa.TableClause, hooks: UpgradeHooks, head: sa.Row) -> tuple[str, str]:
    """The head's key id and its new seal; the old seal must check out under that key, or the upgrade stops."""
    sealing = hooks.head
    if sealing is None:
        raise UpgradeRefused("the audit head must be sealed again with the log's key: run `lfr db upgrade`")
    if head.seq == 0:
        candidates = list(dict.fromkeys([sealing.key_id, ""]))
    else:
        key_id = connection.execute(sa.select(entries.c.key_id).where(entries.c.seq == head.seq)).scalar()
        if key_id is None:
            raise UpgradeRefused(
                f"the audit head points at entry {head.seq}, which is missing: the log was cut. Restore the database"
                " from a backup (and check it with `lfr audit verify` of the release that wrote it) before upgrading"
            )
        candidates = [key_id]
    problems: list[str] = []
    for key_id in candidates:
        try:
            return key_id, sealing.reseal(head.seq, head.hash, key_id, head.seal)
        except ValueError as exc:
            problems.append(str(exc))
    raise UpgradeRefused("the audit head cannot be sealed again: " + "; ".join(problems))
