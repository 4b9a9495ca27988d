"""Sealing the audit head for a schema upgrade: the revision-1 seal (no key id), checked and replaced by today's.

Revision 2 of the records schema adds the key id to the head record and to the bytes its seal
covers. The upgrade cannot recompute a keyed seal without the key, and must not bless a head
that was rewritten before the upgrade: so it checks the old seal with the key the log was
written with, then seals the head again. An unkeyed log needs no secret (its seal is a plain
SHA-256); a keyed one needs the configured key.
"""

from cluster.audit.entry import ENCODING_VERSION, canonical_json, head_payload
from cluster.audit.sealing import Sealer


def first_head_payload(seq: int, entry_hash: str) -> bytes:
    """The bytes a head seal covered in revision 1 of the schema: seq and hash, no key id."""
    return canonical_json([ENCODING_VERSION, "head", seq, entry_hash]).encode("utf-8")


class HeadResealer:
    """`cluster.database.migrations.hooks.HeadSealing` over this process's sealer."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    @property
    def key_id(self) -> str:
        return self.sealer.key_id

    def first_seal(self, seq: int, entry_hash: str) -> str:
        return self.sealer.digest(first_head_payload(seq, entry_hash))

    def reseal(self, seq: int, entry_hash: str, key_id: str, first_seal: str) -> str:
        sealer = self._sealer_for(key_id)
        if sealer.digest(first_head_payload(seq, entry_hash)) != first_seal:
            raise ValueError(
                f"the head record (entry {seq}) is not sealed by {sealer.describe()}: it was rewritten, or the log"
                " was written with another key; check it with the release that wrote it (`lfr audit verify`)"
            )
        return sealer.digest(head_payload(seq, entry_hash, key_id))

    def _sealer_for(self, key_id: str) -> Sealer:
        if key_id == "":
            return Sealer(None)
        if key_id == self.sealer.key_id:
            return self.sealer
        raise ValueError(
            f"the audit log is sealed with HMAC key id {key_id}, but this process has {self.sealer.describe()}:"
            " set LFR_AUDIT_HMAC_KEY (or the variable audit.hmac_key_env names) to the key the log was written with"
        )
