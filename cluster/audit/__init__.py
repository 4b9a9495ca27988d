"""The tamper-evident audit log: hash-chained, sealed entries of who did what, and their verification."""
