"""Configuration of the records database (the `database` section): alerts, audit log, status board."""

from pydantic import Field, field_validator

from cluster.database.engine import database_url
from cluster.database.erasure import ErasureConfig
from cluster.section import Section


class DatabaseConfig(Section):
    """Where alerts and the audit log are kept."""

    url: str = Field(
        "lfr.sqlite3",
        min_length=1,
        description=(
            "SQLite file path, or postgresql://USER@HOST:PORT/DATABASE; leave the password out of the file"
            " (libpq reads PGPASSWORD or ~/.pgpass)."
        ),
    )

    erasure: ErasureConfig = ErasureConfig()

    @field_validator("url")
    @classmethod
    def _url_is_supported(cls, url: str) -> str:
        database_url(url)
        return url
