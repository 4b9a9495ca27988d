"""A deployment at a protest or assembly: the supervisor-level authorisation it needs, with its reasons.

Matching faces where people gather to protest or assemble touches their freedom to do so, so such a
deployment needs more than the ordinary authorisation: a named officer of superintendent rank or
above, and a recorded reason why it is necessary and why it is proportionate. The live run writes all
of it to the audit log when it starts; the public records show only that the deployment is at an
assembly (and its exclusion windows), not who authorised it or why.
"""

import enum
from typing import Any

from pydantic import Field, field_validator, model_validator

from cluster.section import Section


class SupervisorRank(enum.StrEnum):
    """The ranks that may authorise live facial recognition at an assembly: superintendent and above."""

    SUPERINTENDENT = "superintendent"
    CHIEF_SUPERINTENDENT = "chief_superintendent"
    COMMANDER = "commander"
    ASSISTANT_CHIEF_CONSTABLE = "assistant_chief_constable"
    DEPUTY_ASSISTANT_COMMISSIONER = "deputy_assistant_commissioner"
    DEPUTY_CHIEF_CONSTABLE = "deputy_chief_constable"
    ASSISTANT_COMMISSIONER = "assistant_commissioner"
    CHIEF_CONSTABLE = "chief_constable"
    DEPUTY_COMMISSIONER = "deputy_commissioner"
    COMMISSIONER = "commissioner"


REQUIRED = {
    "authorised_by_supervisor": "the name of the officer who authorised it",
    "rank": "their rank: " + ", ".join(rank.value for rank in SupervisorRank),
    "necessity": "why matching faces at this assembly is necessary",
    "proportionality": "why it is proportionate to the intrusion on the people assembled",
}
"""Each key an assembly authorisation must have, and what to write in it."""


class AssemblyAuthorisation(Section):
    """Marks a deployment as at a protest or assembly; see configs/deployments/assembly_demo.yaml."""

    authorised_by_supervisor: str = Field(description=REQUIRED["authorised_by_supervisor"])
    rank: SupervisorRank = Field(description=REQUIRED["rank"])
    necessity: str = Field(description=REQUIRED["necessity"])
    proportionality: str = Field(description=REQUIRED["proportionality"])

    @model_validator(mode="before")
    @classmethod
    def _says_what_is_missing(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ValueError(
                "must be a mapping with " + ", ".join(REQUIRED) + ": a deployment at an assembly needs a"
                " supervisor-level authorisation with its reasons"
            )
        missing = [key for key in REQUIRED if not str(data.get(key) or "").strip()]
        if missing:
            raise ValueError(
                "a deployment at an assembly needs a supervisor-level authorisation with its reasons;"
                " missing or blank: " + "; ".join(f"{key} (add {key}: {REQUIRED[key]})" for key in missing)
            )
        return data

    @field_validator("rank", mode="before")
    @classmethod
    def _supervisor_level(cls, rank: Any) -> Any:
        allowed = {member.value for member in SupervisorRank}
        spelt = str(rank).strip().lower().replace(" ", "_").replace("-", "_")
        if spelt not in allowed:
            raise ValueError(
                f"'{rank}' may not authorise live facial recognition at an assembly: the authorising officer must be"
                f" superintendent or above ({', '.join(sorted(allowed))})"
            )
        return spelt

    @field_validator("authorised_by_supervisor", "necessity", "proportionality")
    @classmethod
    def _trimmed(cls, text: str) -> str:
        return text.strip()
