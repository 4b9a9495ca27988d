"""When each sighting reached its alert, read back from the audit log.

The store's audit entries name the sightings they stored by keyed pseudonym (a sighting id names
its camera, and the log outlives the alert). Whoever holds the sighting ids and the key can tell
when the store took each one: the order in which the Coordinator learnt the evidence, which capture
times do not give (a tracklet is decided seconds after its faces, later still while the gallery
is down). The chaos checks judge fusion by it.
"""

from collections.abc import Iterable

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog

EVIDENCE_ACTIONS = (AuditAction.ALERT_RAISED, AuditAction.ALERT_UPDATED)
"""The audit entries that record sightings reaching an alert."""
PSEUDONYM_KEYS = ("sighting_pseudonyms", "added_sighting_pseudonyms")
"""Where those entries list them: the raise names every sighting, an update those it added."""


def sightings_stored_at(audit: AuditLog, sighting_ids: Iterable[str]) -> dict[str, float]:
    """Each given sighting id the log records, with the time of the first entry that stored it (unix seconds)."""
    taken: dict[str, float] = {}
    after = 0
    while page := audit.entries(after_seq=after, actions=EVIDENCE_ACTIONS):
        for entry in page:
            for key in PSEUDONYM_KEYS:
                for pseudonym in entry.details.get(key, ()):
                    taken.setdefault(pseudonym, entry.at)
        after = page[-1].seq
    pseudonyms = {sighting_id: audit.sealer.sighting_pseudonym(sighting_id) for sighting_id in sighting_ids}
    return {sighting_id: taken[p] for sighting_id, p in pseudonyms.items() if p in taken}
