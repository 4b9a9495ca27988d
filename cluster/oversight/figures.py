"""The report's figures from counts: rates with their intervals, percentiles, and breakdowns by group.

Plain arithmetic on numbers the records hold, so each is unit-tested on its own. A rate is None
when its denominator is zero (nothing to divide by is not a rate of 0); its interval is the Wilson
score interval of `cluster.evaluation.openset`, which stays sensible at 0 or a handful of events,
the counts a single deployment has.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cluster.evaluation.openset import CONFIDENCE, wilson_interval

SMALL_COUNT = 30
"""Below this many trials a rate moves a lot with one event more or less; the report says so."""


@dataclass(frozen=True)
class RateFigure:
    """count out of total, with its Wilson interval at `confidence`."""

    count: int
    total: int
    low: float
    high: float
    confidence: float

    @property
    def rate(self) -> float:
        return self.count / self.total


def rate_of(count: int, total: int, confidence: float = CONFIDENCE) -> RateFigure | None:
    """count / total with its interval; None when total is 0. ValueError for counts that cannot be a rate."""
    if count < 0 or total < 0 or count > total:
        raise ValueError(f"a rate needs 0 <= count <= total, got {count} of {total}")
    if total == 0:
        return None
    low, high = wilson_interval(count, total, confidence)
    return RateFigure(count, total, low, high, confidence)


@dataclass(frozen=True)
class Percentiles:
    """Median, 90th percentile and maximum of some durations (seconds), and how many there were."""

    count: int
    p50: float
    p90: float
    max: float


def percentiles(values: Sequence[float]) -> Percentiles | None:
    """Linear-interpolation percentiles (numpy's default); None for no values."""
    ordered = sorted(float(value) for value in values)
    if not ordered:
        return None
    if not all(math.isfinite(value) for value in ordered):
        raise ValueError("percentiles need finite values")
    return Percentiles(len(ordered), _quantile(ordered, 0.5), _quantile(ordered, 0.9), ordered[-1])


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass(frozen=True)
class Outcomes:
    """Alerts by what officers decided: confirmed (the right person), rejected (a false alert), or not yet decided."""

    confirmed: int = 0
    rejected: int = 0
    not_adjudicated: int = 0

    @property
    def alerts(self) -> int:
        return self.confirmed + self.rejected + self.not_adjudicated

    @property
    def adjudicated(self) -> int:
        return self.confirmed + self.rejected

    def plus(self, outcome: str) -> "Outcomes":
        """These outcomes with one more alert whose outcome is `outcome` (confirmed, rejected or anything else)."""
        if outcome == "confirmed":
            return Outcomes(self.confirmed + 1, self.rejected, self.not_adjudicated)
        if outcome == "rejected":
            return Outcomes(self.confirmed, self.rejected + 1, self.not_adjudicated)
        return Outcomes(self.confirmed, self.rejected, self.not_adjudicated + 1)

    def false_share(self, confidence: float = CONFIDENCE) -> RateFigure | None:
        """Rejected among adjudicated alerts, with its interval; None when none was adjudicated."""
        return rate_of(self.rejected, self.adjudicated, confidence)


@dataclass(frozen=True)
class GroupFigures:
    """One group of a breakdown: the people of the watchlist in it, and the outcomes of the alerts naming them."""

    group: str
    people: int
    outcomes: Outcomes


def breakdown(
    groups: Sequence[str],
    not_recorded: str,
    people: Mapping[str, str | None],
    alerts: Iterable[tuple[str, str]],
) -> tuple[GroupFigures, ...]:
    """Outcomes per group, every group listed even when empty, then `not_recorded` for people without a value.

    groups: every value the attribute may take, in the order to list them. people: each watchlist
    person's value (None: not recorded). alerts: (person id, outcome) of each alert; a person
    missing from `people` counts as not recorded.
    """
    order = [*groups, not_recorded]
    if len(set(order)) != len(order):
        raise ValueError(f"breakdown groups must be distinct, got {order}")
    unknown = sorted({value for value in people.values() if value is not None and value not in groups})
    if unknown:
        raise ValueError(f"values {unknown} are not among the groups {list(groups)}")
    counts = dict.fromkeys(order, 0)
    for value in people.values():
        counts[value or not_recorded] += 1
    outcomes = dict.fromkeys(order, Outcomes())
    for person_id, outcome in alerts:
        group = people.get(person_id) or not_recorded
        outcomes[group] = outcomes[group].plus(outcome)
    return tuple(GroupFigures(group, counts[group], outcomes[group]) for group in order)
