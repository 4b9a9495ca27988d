"""Expiry times as officers write them (`+DAYS`, a date, or a date-time) and as they are shown.

One parser for every place an expiry is typed (`lfr watchlist create/add --expires`, an import
manifest's `expiry` column), so the same text always means the same moment.
"""

import math
import time
from datetime import UTC, date, datetime, timedelta

DAY_S = 24 * 3600


def parse_expiry(text: str, now: float | None = None, what: str = "--expires") -> int:
    """Unix seconds from '+DAYS', an ISO date (expires at the end of that day, UTC) or an ISO date-time.

    A date-time without a UTC offset is taken as UTC. ValueError naming `what` and saying what is
    accepted otherwise.
    """
    value = text.strip()
    current = time.time() if now is None else now
    if value.startswith("+"):
        try:
            days = float(value[1:])
        except ValueError:
            days = float("nan")
        if not (days > 0 and math.isfinite(days)):
            raise ValueError(f"{what} {text!r}: +DAYS must be a positive number of days, such as +90")
        return int(current + days * DAY_S)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return int(datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp())
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{what} {text!r}: pass +DAYS (such as +90), a date (2026-12-31) or a date-time (2026-12-31T18:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def iso(unix_s: float) -> str:
    """The moment as an ISO 8601 date-time in UTC, to the second."""
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="seconds")
