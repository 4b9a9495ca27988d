"""Fingerprints of frozen entries: each covers the id, the person, the expiry and every bit of the embedding."""

import numpy as np

from cluster.gallery.fingerprints import FrozenEntry, entry_fingerprint, version_digest, version_drift
from tests.gallery.factories import unit_vectors

VECTOR = unit_vectors(1, seed=3)[0]
FROZEN_AT = 1_700_000_000


def test_each_field_and_each_bit_of_the_embedding_changes_the_fingerprint():
    base = entry_fingerprint("e1", "alice", FROZEN_AT + 100, VECTOR)
    one_bit = VECTOR.copy()
    one_bit.view(np.uint32)[77] ^= 1
    variants = [
        entry_fingerprint("e2", "alice", FROZEN_AT + 100, VECTOR),
        entry_fingerprint("e1", "bob", FROZEN_AT + 100, VECTOR),
        entry_fingerprint("e1", "alice", FROZEN_AT + 101, VECTOR),
        entry_fingerprint("e1", "alice", FROZEN_AT + 100, one_bit),
        # Fields are length-prefixed: moving characters between id and person is another entry.
        entry_fingerprint("e1a", "lice", FROZEN_AT + 100, VECTOR),
    ]
    assert len({base, *variants}) == len(variants) + 1
    # The bytes hashed are the float32 values, whatever container Milvus returns them in.
    assert entry_fingerprint("e1", "alice", FROZEN_AT + 100, [float(v) for v in VECTOR]) == base


def test_the_digest_does_not_depend_on_the_order_of_the_rows():
    entries = [
        FrozenEntry(f"e{i}", FROZEN_AT + i, entry_fingerprint(f"e{i}", "p", FROZEN_AT + i, VECTOR)) for i in range(5)
    ]
    assert version_digest(entries) == version_digest(reversed(entries))
    assert version_digest(entries) != version_digest(entries[:-1])


def test_drift_names_changed_added_and_missing_entries_and_allows_expiry():
    frozen = [
        FrozenEntry("kept", FROZEN_AT + 1000, "f-kept"),
        FrozenEntry("edited", FROZEN_AT + 1000, "f-edited"),
        FrozenEntry("deleted", FROZEN_AT + 1000, "f-deleted"),
        FrozenEntry("expired", FROZEN_AT + 10, "f-expired"),
    ]
    now = FROZEN_AT + 500
    unchanged = version_drift(frozen, {"kept": "f-kept", "edited": "f-edited", "deleted": "f-deleted"}, now)
    assert unchanged.unchanged, "an entry gone after its expiry is not a change"
    drift = version_drift(frozen, {"kept": "f-kept", "edited": "f-other", "planted": "f-planted"}, now)
    assert (drift.changed, drift.added, drift.missing) == (("edited",), ("planted",), ("deleted",))
    assert drift.describe() == "1 changed (edited), 1 added (planted), 1 missing (deleted)"
