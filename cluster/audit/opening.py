"""Opening the configured audit log: the configured database, sealed with the configured key, anchored to its file."""

from cluster.audit.anchors import AnchorFile
from cluster.audit.config import AuditConfig
from cluster.audit.log import AuditLog
from cluster.audit.sealing import Sealer, sealer_from_env
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database


def open_audit_log(database: DatabaseConfig, audit: AuditConfig) -> AuditLog:
    """The audit log over the configured database (created if missing); refuses without the key when it is required."""
    sealer = configured_sealer(audit)
    return AuditLog(
        Database(database.url, busy_timeout_s=database.busy_timeout_s, erasure=database.erasure),
        sealer,
        anchors=AnchorFile(audit.anchor_file_for(database.url)),
        anchor_interval_s=audit.anchor_interval_s,
    )


def configured_sealer(audit: AuditConfig) -> Sealer:
    """The key from the configured environment variable, else the configured key file."""
    return sealer_from_env(audit.hmac_key_env, required=audit.require_hmac_key, key_file=audit.hmac_key_file)
