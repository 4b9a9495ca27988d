"""The records database (SQLite or PostgreSQL) that alerts, the audit log and the status board share."""
