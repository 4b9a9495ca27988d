"""Configuration of how long alerts are kept and how often expired ones are purged."""

from pydantic import Field

from cluster.section import Section

RETENTION_MAX_DAYS = 31
"""Alerts and their crops are kept at most this long unless an officer holds them for an investigation."""
SECONDS_PER_DAY = 86_400


class RetentionConfig(Section):
    """Retention of alerts and their crops; purging runs on its own every `interval_s`."""

    days: int = Field(
        RETENTION_MAX_DAYS,
        ge=1,
        le=RETENTION_MAX_DAYS,
        description=f"Days an alert is kept after it was raised; at most {RETENTION_MAX_DAYS}, by policy.",
    )
    interval_s: float = Field(3600.0, gt=0.0, le=86_400.0, description="Seconds between purges.")

    @property
    def older_than_s(self) -> float:
        return self.days * SECONDS_PER_DAY
