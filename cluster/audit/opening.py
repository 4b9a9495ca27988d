"""Opening the configured audit log: the configured database, sealed with the key its environment variable holds."""

from cluster.audit.config import AuditConfig
from cluster.audit.log import AuditLog
from cluster.audit.sealing import sealer_from_env
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database


def open_audit_log(database: DatabaseConfig, audit: AuditConfig) -> AuditLog:
    """The audit log over the configured database (created if missing)."""
    sealer = sealer_from_env(audit.hmac_key_env, required=audit.require_hmac_key)
    return AuditLog(Database(database.url, busy_timeout_s=database.busy_timeout_s, erasure=database.erasure), sealer)
