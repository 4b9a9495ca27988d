"""Configuration of the records database (the `database` section): alerts, audit log, status board.

The default SQLite file lives in LFR's data folder (`cluster.private_files.data_home`: `$LFR_HOME`,
else `$XDG_DATA_HOME/lfr`, else `~/.local/share/lfr`), never in the working directory, so every
command run from anywhere finds the same records. An explicit path or URL is used as given.
"""

import hashlib
from pathlib import Path

from pydantic import Field, field_validator

from cluster.database.engine import SQLITE_BUSY_TIMEOUT_S, database_url
from cluster.database.erasure import ErasureConfig
from cluster.private_files import data_home
from cluster.section import Section

DATABASE_FILE = "lfr.sqlite3"
DEAD_LETTERS_SUFFIX = ".dead-letters"


def default_database_path() -> Path:
    """The SQLite file used when the configuration names none: `lfr.sqlite3` in LFR's data folder."""
    return data_home() / DATABASE_FILE


class DatabaseConfig(Section):
    """Where alerts and the audit log are kept, and where alerts wait while the database cannot take them."""

    url: str = Field(
        default_factory=lambda: str(default_database_path()),
        min_length=1,
        description=(
            "SQLite file path, or postgresql://USER@HOST:PORT/DATABASE; leave the password out of the file"
            " (libpq reads PGPASSWORD or ~/.pgpass). Default: lfr.sqlite3 in $LFR_HOME, else"
            " $XDG_DATA_HOME/lfr, else ~/.local/share/lfr."
        ),
    )
    busy_timeout_s: float = Field(
        SQLITE_BUSY_TIMEOUT_S,
        ge=0.0,
        le=3600.0,
        description="SQLite: how long a write waits for another writer's lock before it fails (and is retried).",
    )
    dead_letters: Path | None = Field(
        None,
        description=(
            "Folder where alerts wait while the database cannot take them (redelivered when it can)."
            " Default: beside a SQLite file (FILE.dead-letters), or dead-letters/HOST-DATABASE in LFR's data"
            " folder for PostgreSQL."
        ),
    )

    erasure: ErasureConfig = ErasureConfig()

    @field_validator("url")
    @classmethod
    def _url_is_supported(cls, url: str) -> str:
        database_url(url)
        return url

    def dead_letter_folder(self) -> Path:
        """The spool of undelivered alerts for this database (one per database, so none reaches another)."""
        if self.dead_letters is not None:
            return self.dead_letters.expanduser().absolute()
        url = database_url(self.url)
        if url.get_backend_name() == "sqlite":
            path = Path(url.database or "")
            return path.with_name(path.name + DEAD_LETTERS_SUFFIX)
        where = url.render_as_string(hide_password=True)
        digest = hashlib.sha256(where.encode("utf-8")).hexdigest()[:12]
        return data_home() / "dead-letters" / f"{url.host or 'local'}-{url.database or 'default'}-{digest}"
