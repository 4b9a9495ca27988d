"""The tamper-evident audit log, and the database that keeps it together with the alerts."""
