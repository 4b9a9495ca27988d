"""Configuration of how long alerts are kept and how often expired ones are purged."""

from pydantic import Field, model_validator

from cluster.section import Section

RETENTION_MAX_DAYS = 31
"""Alerts and their crops are kept at most this long unless an officer holds them for an investigation."""
SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3600
SUPPRESSION_MAX_HOURS = 7 * 24
"""A suppression's face embedding outlives its deployment by at most this, should the deployment never stop cleanly."""


class RetentionConfig(Section):
    """Retention of alerts, cases and their crops; purging runs on its own every `interval_s`."""

    days: int = Field(
        RETENTION_MAX_DAYS,
        ge=1,
        le=RETENTION_MAX_DAYS,
        description=f"Days an alert is kept after it was raised; at most {RETENTION_MAX_DAYS}, by policy.",
    )
    interval_s: float = Field(3600.0, gt=0.0, le=86_400.0, description="Seconds between purges.")
    oversight_days: int | None = Field(
        None,
        ge=1,
        le=RETENTION_MAX_DAYS,
        description=(
            "Days a rejected alert's face crops are kept after the rejection, for oversight to review the false"
            " alert; at most `days`; default: as long as the alert (`days`)."
        ),
    )
    case_days: int = Field(
        RETENTION_MAX_DAYS,
        ge=1,
        le=RETENTION_MAX_DAYS,
        description=(
            f"Days a retrospective or social-media search's case (its candidates' crops and the reports its search"
            f" wrote) is kept after it was opened, unless a supervisor holds it; at most {RETENTION_MAX_DAYS}."
        ),
    )
    suppression_hours: float = Field(
        24.0,
        gt=0.0,
        le=SUPPRESSION_MAX_HOURS,
        description=(
            "Hours a 'not this person' suppression keeps the rejected face's embedding at most; its deployment's"
            " stop deletes it sooner. Set it to the longest deployment's length."
        ),
    )

    @model_validator(mode="after")
    def _oversight_within_retention(self) -> "RetentionConfig":
        if self.oversight_days is not None and self.oversight_days > self.days:
            raise ValueError(
                f"oversight_days ({self.oversight_days}) must not exceed days ({self.days}): the crops go with the"
                " alert in any case"
            )
        return self

    @property
    def older_than_s(self) -> float:
        return self.days * SECONDS_PER_DAY

    @property
    def oversight_s(self) -> float:
        """How long a rejected alert's crops are kept after the rejection."""
        return (self.days if self.oversight_days is None else self.oversight_days) * SECONDS_PER_DAY

    @property
    def case_s(self) -> float:
        return self.case_days * SECONDS_PER_DAY

    @property
    def suppression_s(self) -> float:
        return self.suppression_hours * SECONDS_PER_HOUR
