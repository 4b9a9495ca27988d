"""The base of every configuration section.

It lives apart from `cluster.config` so that section modules in sub-packages (such as
`cluster.cameras.config`) can subclass it while `cluster.config` imports them: no import cycle.
"""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A configuration section: unknown keys are errors (typos fail at load) and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
