"""An exclusion window as configured: a stretch of a deployment during which nothing is matched.

A remembrance service during a march, a vigil: the authorising officer names when and why, and
the match stage drops every frame captured then (`DeploymentWindow.admission`). The times and the
reason are public; the reason must therefore say nothing about any person.
"""

from pydantic import AwareDatetime, Field, field_validator, model_validator

from cluster.deployment.window import Exclusion
from cluster.section import Section


class ExclusionWindowConfig(Section):
    """One exclusion window: starts_at (inclusive) to ends_at (exclusive), and why."""

    starts_at: AwareDatetime = Field(description="ISO 8601 with its UTC offset, inside the deployment's window.")
    ends_at: AwareDatetime = Field(description="ISO 8601 with its UTC offset; after starts_at.")
    reason: str = Field(min_length=1, max_length=200, description="Why, as the public records show it.")

    @field_validator("reason")
    @classmethod
    def _says_why(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be blank: say why nothing is matched then (e.g. remembrance service)")
        return text.strip()

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> "ExclusionWindowConfig":
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"ends_at ({self.ends_at.isoformat()}) must be after starts_at ({self.starts_at.isoformat()})"
            )
        return self

    def exclusion(self) -> Exclusion:
        return Exclusion(self.starts_at.timestamp(), self.ends_at.timestamp(), self.reason)
