"""Configuration of the records database (alerts and audit log) and of the audit log's sealing."""

from pydantic import Field, field_validator

from cluster.audit.database import database_url
from cluster.audit.sealing import DEFAULT_KEY_ENV
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

    @field_validator("url")
    @classmethod
    def _url_is_supported(cls, url: str) -> str:
        database_url(url)
        return url


class AuditConfig(Section):
    """How audit entries are sealed; the key itself never goes in a configuration file."""

    hmac_key_env: str = Field(
        DEFAULT_KEY_ENV,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the HMAC key (>= 32 bytes) that seals audit entries.",
    )
    require_hmac_key: bool = Field(
        False, description="Refuse to start when that variable is unset; set true in production."
    )
