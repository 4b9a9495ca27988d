"""What the case store refuses, as exceptions an API can map to clear answers."""


class CaseStoreError(Exception):
    """Base of the case store's refusals."""


class CaseNotFoundError(CaseStoreError, LookupError):
    """No case (or no item of the case) has this id; it may have been purged after its retention period."""


class CaseDecisionError(CaseStoreError, ValueError):
    """A decision the item's state does not allow (it is already decided), or a hold that clashes with the case's."""
