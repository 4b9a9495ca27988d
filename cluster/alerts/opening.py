"""Opening the alert store from configuration: one database shared with its audit log."""

from cluster.alerts.store import AlertStore
from cluster.audit.config import AuditConfig
from cluster.audit.opening import open_audit_log
from cluster.database.config import DatabaseConfig


def open_alert_store(database: DatabaseConfig, audit: AuditConfig) -> AlertStore:
    """The alert store and its audit log over the configured database (created if missing)."""
    log = open_audit_log(database, audit)
    return AlertStore(log.database, log)
