"""Configuration of the records database (alerts and audit log) and of the audit log's sealing."""

from pydantic import Field

from cluster.audit.sealing import DEFAULT_KEY_ENV
from cluster.section import Section


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
