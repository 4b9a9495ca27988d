"""How audit entries are sealed: SHA-256, or HMAC-SHA-256 when a secret key is configured.

A plain SHA-256 chain shows any edit, removal or reordering of entries, but someone who can
write the database can also rewrite every hash after the entry they changed. With an HMAC key
that lives outside the database (an environment variable fed from a secret store), a rewritten
chain no longer verifies, because the rewriter cannot compute the seals. Every process that
writes the log must use the same key; the key id stored with each entry (a fingerprint, not
the key) makes a mismatch easy to diagnose.
"""

import hashlib
import hmac
import os
from collections.abc import Mapping

MIN_KEY_BYTES = 32
KEY_ID_CHARS = 16
DEFAULT_KEY_ENV = "LFR_AUDIT_HMAC_KEY"


class Sealer:
    """Computes the hash that seals an audit entry or the log's head record."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the audit HMAC key has {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes"
                " (for example `openssl rand -hex 32`)"
            )
        self._key = key
        self.key_id = "" if key is None else hashlib.sha256(b"lfr-audit-key-id\0" + key).hexdigest()[:KEY_ID_CHARS]

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def digest(self, payload: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(payload).hexdigest()
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def describe(self) -> str:
        return f"HMAC key id {self.key_id}" if self.keyed else "no HMAC key"


def sealer_from_env(
    variable: str = DEFAULT_KEY_ENV, *, required: bool = False, environ: Mapping[str, str] | None = None
) -> Sealer:
    """The sealer for the key in environment variable `variable`; unkeyed when it is unset (unless required)."""
    value = (os.environ if environ is None else environ).get(variable, "")
    if not value:
        if required:
            raise ValueError(f"the audit log requires an HMAC key: set {variable} to at least {MIN_KEY_BYTES} bytes")
        return Sealer(None)
    try:
        return Sealer(value.encode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from exc
