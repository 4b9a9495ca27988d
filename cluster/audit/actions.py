"""What an audit entry records: the kinds of action a deployment must be able to account for."""

import enum


class AuditAction(enum.StrEnum):
    """Each action that changes or reveals personal data, or changes how the system decides."""

    ENROLMENT = "enrolment"
    WATCHLIST_CHANGE = "watchlist_change"
    SEARCH = "search"
    ALERT_RAISED = "alert_raised"
    ALERT_UPDATED = "alert_updated"
    ADJUDICATION = "adjudication"
    ALERT_HELD = "alert_held"
    ALERT_RELEASED = "alert_released"
    CONFIG_CHANGE = "config_change"
    DEPLOYMENT_STARTED = "deployment_started"
    DEPLOYMENT_STOPPED = "deployment_stopped"
    PURGE = "purge"
    LOGIN = "login"
    REQUEST = "request"
    ACCESS_CHANGE = "access_change"
    SUPPRESSION_CREATED = "suppression_created"
    SIGHTING_SUPPRESSED = "sighting_suppressed"
    SUPPRESSION_ENDED = "suppression_ended"
    CASE_OPENED = "case_opened"
    CASE_HELD = "case_held"
    CASE_RELEASED = "case_released"
