"""The alert lifecycle a control room follows, as a table of allowed moves.

- new -> acknowledged: an officer takes the alert on (looks at it, sends someone to engage).
- new -> rejected: the operator sees at a glance that the crop is not the watchlist person.
- acknowledged -> confirmed / rejected: the outcome once the person was engaged.

new -> confirmed is refused: confirming an identity takes an officer who took the alert on and
engaged, so every confirmation has an acknowledgement before it. Confirmed and rejected are
final: a mistaken decision is corrected in the case file, never by rewriting the alert's record.
Final decisions need a reason (what was checked), which the false-alert figures rely on, and
a named person: the system (actors named `system:...`) never decides an alert.
"""

from collections.abc import Mapping

from cluster.alerts.errors import IllegalTransitionError
from cluster.alerts.model import AlertState

SYSTEM_ACTOR_PREFIX = "system:"
"""Actors such as system:coordinator and system:retention act on evidence and retention, never on decisions."""

ALLOWED_TRANSITIONS: Mapping[AlertState, frozenset[AlertState]] = {
    AlertState.NEW: frozenset({AlertState.ACKNOWLEDGED, AlertState.REJECTED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.CONFIRMED, AlertState.REJECTED}),
    AlertState.CONFIRMED: frozenset(),
    AlertState.REJECTED: frozenset(),
}


def check_transition(alert_id: str, current: AlertState, new: AlertState, officer: str, reason: str) -> None:
    """Raise unless `officer` may move the alert from `current` to `new` with `reason`."""
    if not officer.strip():
        raise ValueError(f"alert {alert_id}: name the officer who decides; an alert is never decided anonymously")
    if officer.startswith(SYSTEM_ACTOR_PREFIX):
        raise ValueError(
            f"alert {alert_id}: {officer} is the system, and the system never decides an alert; a person does"
        )
    if current.is_final:
        raise IllegalTransitionError(
            f"alert {alert_id} is already {current}, which is final: a decision cannot be changed;"
            " record a correction in the case file"
        )
    if new == current:
        raise IllegalTransitionError(f"alert {alert_id} is already {current}")
    if new not in ALLOWED_TRANSITIONS[current]:
        hint = " (an officer must take it on before confirming)" if new == AlertState.CONFIRMED else ""
        allowed = " or ".join(sorted(ALLOWED_TRANSITIONS[current]))
        raise IllegalTransitionError(
            f"alert {alert_id} cannot go from {current} to {new}{hint}; from {current} it can go to {allowed}"
        )
    if new.is_final and not reason.strip():
        raise ValueError(f"alert {alert_id}: a {new} decision needs a reason (what was checked)")
