"""What enrolment may record about a watchlist person beyond their photos: a few attributes, each optional.

They exist for one purpose: a deployment's report breaks its true and false alerts down by them,
as forces publish (sex, ethnicity, age band), so a bias in who is alerted, or wrongly alerted, can
be seen. Values come from short fixed lists, so the report's groups are the same for every
deployment and a typo cannot start a group of its own; a value not recorded is None, shown as
"not recorded", never guessed. Ethnicity uses the five broad groups of the 2021 census of
England and Wales; it should be as the person defined it (or as recorded at custody), never read
off a face.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Literal, get_args

from pydantic import ValidationError

from cluster.section import Section

Sex = Literal["female", "male"]
Ethnicity = Literal["asian", "black", "mixed", "white", "other"]
AgeBand = Literal["under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus"]


class PersonAttributes(Section):
    """Attributes recorded at enrolment; None: not recorded."""

    sex: Sex | None = None
    ethnicity: Ethnicity | None = None
    age_band: AgeBand | None = None

    def recorded(self) -> dict[str, str]:
        """The attributes that were recorded, by name."""
        return {name: value for name, value in self.model_dump().items() if value is not None}

    def canonical(self) -> str:
        """Sorted JSON of the recorded attributes: how the catalogue stores them."""
        return json.dumps(self.recorded(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_canonical(cls, text: str) -> "PersonAttributes":
        return cls.model_validate(json.loads(text))


NOT_RECORDED = "not recorded"
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    name: tuple(value for value in get_args(get_args(field.annotation)[0]))
    for name, field in PersonAttributes.model_fields.items()
}
"""Each attribute's allowed values, in the order reports list them."""


def parse_attributes(pairs: Iterable[str]) -> PersonAttributes:
    """Attributes from NAME=VALUE pairs (as `--attribute` takes them); ValueError naming the bad pair and choices."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sign, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sign or not name or not value:
            raise ValueError(f"attribute {pair!r}: write NAME=VALUE, such as sex=female; {describe_choices()}")
        if name in values:
            raise ValueError(f"attribute {name!r} is given twice ({values[name]!r} and {value!r}); give it once")
        values[name] = value
    return attributes_from(values)


def attributes_from(values: Mapping[str, object]) -> PersonAttributes:
    """Attributes from a mapping (a manifest row, a JSON body); ValueError naming each bad one and the choices."""
    try:
        return PersonAttributes.model_validate(dict(values))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"][:1])
            if name not in ATTRIBUTE_VALUES:
                problems.append(f"unknown attribute {name!r}")
            else:
                problems.append(f"{name} {values[name]!r} is not one of {', '.join(ATTRIBUTE_VALUES[name])}")
        raise ValueError(f"{'; '.join(problems)}; {describe_choices()}") from None


def describe_choices() -> str:
    return "attributes: " + "; ".join(f"{name} ({', '.join(values)})" for name, values in ATTRIBUTE_VALUES.items())
