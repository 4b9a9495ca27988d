"""Opening the alert store from configuration: one database, the audit log sealed with the configured key."""

from cluster.alerts.store import AlertStore
from cluster.audit.config import AuditConfig, DatabaseConfig
from cluster.audit.database import Database
from cluster.audit.log import AuditLog
from cluster.audit.sealing import sealer_from_env


def open_alert_store(database: DatabaseConfig, audit: AuditConfig) -> AlertStore:
    """The alert store and its audit log over the configured database (created if missing)."""
    opened = Database(database.url)
    sealer = sealer_from_env(audit.hmac_key_env, required=audit.require_hmac_key)
    return AlertStore(opened, AuditLog(opened, sealer))
