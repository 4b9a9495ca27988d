"""Configuration of the audit log: the key that seals it, and the anchor file its head is written to."""

from pathlib import Path

from pydantic import Field

from cluster.audit.sealing import DEFAULT_KEY_ENV
from cluster.database.engine import database_url
from cluster.private_files import data_home
from cluster.section import Section

ANCHOR_SUFFIX = ".audit-anchors"


class AuditConfig(Section):
    """How audit entries are sealed and anchored; the key itself never goes in a configuration file."""

    hmac_key_env: str = Field(
        DEFAULT_KEY_ENV,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the HMAC key (>= 32 bytes) that seals audit entries.",
    )
    hmac_key_file: Path | None = Field(
        None,
        description="File (mode 0600) holding the key, read when the environment variable is unset (`lfr demo`'s own).",
    )
    require_hmac_key: bool = Field(
        True,
        description="Refuse to write or verify the log without the key; false only for throwaway runs, never in"
        " production (an unkeyed chain can be rewritten whole by anyone who can write the database).",
    )
    anchor_path: Path | None = Field(
        None,
        description="Append-only file the chain's head is written to (default: beside a SQLite database, or in"
        " LFR's data folder for PostgreSQL); keep it where the database's administrators cannot edit it.",
    )
    anchor_interval_s: float = Field(
        10.0,
        gt=0,
        description="At most one anchor line per this many seconds after appends, and the timer's period in"
        " long-lived processes (`lfr serve`, `lfr run`).",
    )

    def anchor_file_for(self, database: str) -> Path:
        """Where the anchors of `database` (a path or URL) are kept: `anchor_path`, or the default for it."""
        return self.anchor_path if self.anchor_path is not None else default_anchor_path(database)


def default_anchor_path(database: str) -> Path:
    """`<database file>.audit-anchors` beside a SQLite file; for PostgreSQL, one file per server and
    database in LFR's data folder (`cluster.private_files.data_home`)."""
    url = database_url(database)
    if url.get_backend_name() == "sqlite":
        return Path(f"{url.database}{ANCHOR_SUFFIX}")
    data = data_home()
    name = f"{url.host or 'localhost'}_{url.port or 5432}_{url.database or 'postgres'}"
    return data / f"{''.join(c if c.isalnum() or c in '._-' else '_' for c in name)}{ANCHOR_SUFFIX}"
