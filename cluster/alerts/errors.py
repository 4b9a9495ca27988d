"""What the alert store refuses, as exceptions an API can map to clear answers."""


class AlertStoreError(Exception):
    """Base of the alert store's refusals."""


class AlertNotFoundError(AlertStoreError, LookupError):
    """No alert has this id (it may have been purged after its retention period)."""


class IllegalTransitionError(AlertStoreError, ValueError):
    """The lifecycle does not allow this change of state."""


class AlertClosedError(AlertStoreError):
    """New evidence for an alert that an officer has already decided: raise a new alert instead."""


class AlertConflictError(AlertStoreError, ValueError):
    """The alert or one of its sightings clashes with what is stored under the same id."""


class HoldError(AlertStoreError, ValueError):
    """A hold on an alert that is already held, or a release of one that is not."""
