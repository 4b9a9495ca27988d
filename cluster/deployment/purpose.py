"""Why a deployment runs, as one of a few published categories: what the public records say it was for.

A deployment's `reason` is the authorising officer's own words (necessity and proportionality) and
stays inside the force; the purpose category is what the public deployment records show, so it is
a closed list a reader can compare across deployments, as forces publish them.
"""

import enum


class Purpose(enum.StrEnum):
    """The categories of people a deployment's watchlist is for."""

    WANTED_FOR_OFFENCES = "wanted_for_offences"
    COURT_ORDER_CONDITIONS = "court_order_conditions"
    MISSING_PERSONS = "missing_persons"
    RISK_OF_SERIOUS_HARM = "risk_of_serious_harm"
    SYSTEM_TEST = "system_test"

    @property
    def label(self) -> str:
        """The category in the words the public records use."""
        return LABELS[self]


LABELS = {
    Purpose.WANTED_FOR_OFFENCES: "People wanted by the police or the courts for criminal offences",
    Purpose.COURT_ORDER_CONDITIONS: "People breaching bail or court-order conditions at this place",
    Purpose.MISSING_PERSONS: "Missing people, including those at risk of harm",
    Purpose.RISK_OF_SERIOUS_HARM: "People who pose a risk of serious harm to others",
    Purpose.SYSTEM_TEST: "A test or demonstration of the system: no real watchlist",
}
