"""How audit entries are sealed: SHA-256, or HMAC-SHA-256 when a secret key is configured.

A plain SHA-256 chain shows any edit, removal or reordering of entries, but someone who can
write the database can also rewrite every hash after the entry they changed. With an HMAC key
that lives outside the database (an environment variable fed from a secret store), a rewritten
chain no longer verifies, because the rewriter cannot compute the seals. Every process that
writes the log must use the same key; the key id stored with each entry and in the head record
(a fingerprint, not the key) makes a mismatch easy to diagnose, and the log refuses to be
appended to with another key.

The same key makes pseudonyms: audit entries about alerts hold a keyed digest of the person id
and of free-text reasons, so the log does not keep who was seen, or why, past the alert's
retention, yet an investigator with the key can still check a given person id against it.
"""

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

MIN_KEY_BYTES = 32
KEY_ID_CHARS = 16
PSEUDONYM_CHARS = 32
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

    def person_pseudonym(self, person_id: str) -> str:
        """What an audit entry holds instead of a person id: only the key's holder can link the two."""
        return self._pseudonym("person", person_id)

    def sighting_pseudonym(self, sighting_id: str) -> str:
        """What an audit entry holds instead of a sighting id (which names the camera): which evidence came when."""
        return self._pseudonym("sighting", sighting_id)

    def reason_digest(self, reason: str) -> str:
        """What an audit entry holds instead of a free-text reason (the text stays with the alert); "" for none."""
        return self._pseudonym("reason", reason) if reason else ""

    def _pseudonym(self, kind: str, value: str) -> str:
        """Keyed, no one without the key can test a guess; unkeyed, anyone can, so unkeyed logs protect nothing here."""
        payload = b"lfr-audit-pseudonym\0" + kind.encode("utf-8") + b"\0" + value.encode("utf-8")
        return self.digest(payload)[:PSEUDONYM_CHARS]

    def describe(self) -> str:
        return f"HMAC key id {self.key_id}" if self.keyed else "no HMAC key"


def sealer_from_env(
    variable: str = DEFAULT_KEY_ENV,
    *,
    required: bool = False,
    environ: Mapping[str, str] | None = None,
    key_file: Path | None = None,
) -> Sealer:
    """The sealer for the key in environment variable `variable`, else in `key_file`; unkeyed only if not required."""
    value = (os.environ if environ is None else environ).get(variable, "")
    if not value and key_file is not None:
        value = read_key_file(key_file)
    if not value:
        if required:
            raise ValueError(missing_key_message(variable))
        return Sealer(None)
    try:
        return Sealer(value.encode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"{variable if key_file is None else key_file}: {exc}") from exc


def missing_key_message(variable: str) -> str:
    """What to do when the key is needed and absent: the same words wherever the log is opened."""
    return (
        f"the audit log requires an HMAC key and {variable} is unset: generate one with `openssl rand -hex 32`,"
        f" keep it in your secret store and set {variable} to it for every process that writes or verifies this"
        " log (`lfr demo` makes its own; audit.require_hmac_key: false runs unkeyed, never in production)"
    )


def read_key_file(path: Path) -> str:
    """The key kept in `path`, which only its owner may read (a key others can read seals nothing)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the audit HMAC key file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"the audit HMAC key file {path} is open to other users (mode {mode & 0o777:o}): chmod 600 it")
    return text


def write_key_file(path: Path) -> Sealer:
    """Keep a new random key in `path` (mode 0600, never overwriting one) and return its sealer."""
    key = secrets.token_hex(MIN_KEY_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return Sealer(key.encode("utf-8"))
