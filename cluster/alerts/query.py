"""Which alerts to list, and pages through them with a cursor.

Pages are ordered newest first by (created_at, alert_id) and continue from a keyset cursor
rather than an offset: a page costs the same however deep it is, and alerts raised while an
officer pages through do not shift or repeat rows.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass

import sqlalchemy as sa

from cluster.alerts.model import Alert, AlertState
from cluster.alerts.tables import alerts, sightings

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class AlertFilter:
    """Conditions an alert must meet to be listed; None or empty means any.

    since / until: bounds on created_at (unix seconds), since inclusive and until exclusive.
    camera_id: the alert has at least one sighting from this camera.
    """

    states: tuple[AlertState, ...] = ()
    deployment_id: str | None = None
    person_id: str | None = None
    camera_id: str | None = None
    since: float | None = None
    until: float | None = None
    held: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "states", tuple(AlertState(state) for state in self.states))
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"AlertFilter.{name} must be a finite unix time, got {value}")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError(f"AlertFilter: until ({self.until}) must be after since ({self.since})")

    def where(self) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions this filter stands for."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.states:
            conditions.append(alerts.c.state.in_([state.value for state in self.states]))
        if self.deployment_id is not None:
            conditions.append(alerts.c.deployment_id == self.deployment_id)
        if self.person_id is not None:
            conditions.append(alerts.c.person_id == self.person_id)
        if self.camera_id is not None:
            seen_by_camera = sa.select(sightings.c.alert_id).where(
                sightings.c.camera_id == self.camera_id, sightings.c.alert_id == alerts.c.alert_id
            )
            conditions.append(seen_by_camera.exists())
        if self.since is not None:
            conditions.append(alerts.c.created_at >= self.since)
        if self.until is not None:
            conditions.append(alerts.c.created_at < self.until)
        if self.held is not None:
            conditions.append(alerts.c.held == self.held)
        return conditions


@dataclass(frozen=True)
class AlertPage:
    """One page of alerts, newest first; pass next_cursor to get the next page (None: this was the last)."""

    alerts: tuple[Alert, ...]
    next_cursor: str | None


def encode_cursor(created_at: float, alert_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, alert_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, alert_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}: pass the next_cursor of the previous page unchanged") from exc
    if isinstance(created_at, bool) or not isinstance(created_at, int | float) or not isinstance(alert_id, str):
        raise ValueError(f"invalid cursor {cursor!r}: pass the next_cursor of the previous page unchanged")
    try:
        created = float(created_at)
    except OverflowError:
        created = math.inf
    if not math.isfinite(created):
        raise ValueError(f"invalid cursor {cursor[:100]!r}: its time is out of range; pass the next_cursor unchanged")
    return created, alert_id


def after_cursor(cursor: str) -> sa.ColumnElement[bool]:
    """Alerts that come after the cursor's alert in newest-first order."""
    created_at, alert_id = decode_cursor(cursor)
    return sa.tuple_(alerts.c.created_at, alerts.c.alert_id) < sa.tuple_(created_at, alert_id)


def page_order() -> tuple[sa.UnaryExpression, sa.UnaryExpression]:
    return alerts.c.created_at.desc(), alerts.c.alert_id.desc()
