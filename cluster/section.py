"""The base of every configuration section, and the one way objects are built from sections.

It lives apart from `cluster.config` so that section modules in sub-packages (such as
`cluster.cameras.config`) can subclass it while `cluster.config` imports them: no import cycle.

Building from configuration: an object made from configuration sections is built by a
classmethod `from_config` on its own class (`CameraTopology.from_config(cameras)`). It takes the
sections it reads, not the whole `LfrConfig` unless it reads most of it, and does whatever
opening that takes (a database, a server, model weights). `__init__` then takes ready parts and
opens nothing, so a test can build the object from parts. A class whose constructor only keeps
its section and opens nothing (`Backoff(config)`, `Camera(config)`) takes the section in
`__init__` and needs no `from_config`. Not `open_x(config)`, `x_from_config(config)`,
`X.open(config)` or `X(**config.model_dump())`.
"""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A configuration section: unknown keys are errors (typos fail at load) and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
