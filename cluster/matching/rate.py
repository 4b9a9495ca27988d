"""`Rate`: a false-alert rate in configuration, written as a number or as a fraction ("1/6000").

Rates that deployments are authorised for are stated as "one in N passers-by"; a decimal such as
0.000166667 hides that and is not exactly 1/6000, so YAML may say `1/6000` instead.
"""

import re
from typing import Annotated

from pydantic import BeforeValidator

FRACTION = re.compile(r"^\s*(?P<numerator>[0-9.eE+-]+)\s*/\s*(?P<denominator>[0-9.eE+-]+)\s*$")


def parse_rate(value: object) -> object:
    """'1/6000' -> 1/6000.0; anything else is left for pydantic to check as a float."""
    if isinstance(value, str) and (match := FRACTION.fullmatch(value)):
        try:
            return float(match["numerator"]) / float(match["denominator"])
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"{value!r} is not a rate: write a number such as 0.001 or a fraction such as 1/6000"
            ) from None
    return value


Rate = Annotated[float, BeforeValidator(parse_rate)]


def rate_argument(text: str) -> float:
    """An argparse type: '1/6000' or '0.001' as a float, with the same message as the configuration."""
    value = parse_rate(text)
    try:
        return value if isinstance(value, float) else float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a rate: write a number such as 0.001 or a fraction such as 1/6000") from None
