"""One audit entry and the canonical bytes its hash is computed over.

The encoding is JSON with a fixed field order, sorted keys and no spaces, tagged with a
version so it can change later without making old entries unverifiable. `details` are
stored and hashed as their canonical JSON text, so verifying never depends on re-parsing.

Details must be small, JSON-safe facts: ids, counts, reasons. They can never hold an
embedding, a face crop or anything about a face that matched nobody: bytes, arrays and long
lists of numbers are refused.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster.audit.actions import AuditAction

ENCODING_VERSION = "lfr-audit-1"
GENESIS_HASH = "0" * 64
MAX_NUMBERS_IN_A_LIST = 16
"""A longer list of numbers looks like an embedding; boxes and score pairs are far shorter."""
MAX_TEXT_CHARS = 200
"""Longest actor or subject."""
MAX_DETAILS_CHARS = 4 * 1024 * 1024


@dataclass(frozen=True)
class AuditEntry:
    """One link of the chain: who did what to what, when, and the hashes that tie it in place."""

    seq: int
    at: float
    actor: str
    action: AuditAction
    subject: str
    details: Mapping[str, Any]
    key_id: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action.value,
            "subject": self.subject,
            "details": dict(self.details),
            "key_id": self.key_id,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditAnchor:
    """A (seq, hash) pair written down outside the database, so that later truncation shows."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> "AuditAnchor":
        seq_text, _, hash_text = text.strip().partition(":")
        if not seq_text.isdigit() or len(hash_text) != 64 or any(c not in "0123456789abcdef" for c in hash_text):
            raise ValueError(f"invalid anchor {text!r}: expected SEQ:HASH, such as 42:<64 hex digits>")
        return cls(int(seq_text), hash_text)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_payload(
    seq: int, at: float, actor: str, action: str, subject: str, details_text: str, key_id: str, prev_hash: str
) -> bytes:
    """The bytes an entry's hash seals: every field but the hash itself."""
    fields = [ENCODING_VERSION, seq, at, actor, action, subject, details_text, key_id, prev_hash]
    return canonical_json(fields).encode("utf-8")


def head_payload(seq: int, entry_hash: str, key_id: str) -> bytes:
    """The bytes the head record's seal covers: the last entry's seq and hash, and the id of the key the log uses."""
    return canonical_json([ENCODING_VERSION, "head", seq, entry_hash, key_id]).encode("utf-8")


def anchor_payload(at: float, seq: int, entry_hash: str, key_id: str) -> bytes:
    """The bytes an anchor line's seal covers: when the head was written down, the head, and the key id."""
    return canonical_json([ENCODING_VERSION, "anchor", at, seq, entry_hash, key_id]).encode("utf-8")


def details_text(details: Mapping[str, Any]) -> str:
    """The canonical JSON of `details` after checking it holds only small, JSON-safe facts."""
    if not isinstance(details, Mapping):
        raise ValueError(f"audit details must be a mapping, got {type(details).__name__}")
    _check_value(details, "details")
    text = canonical_json(details)
    if len(text) > MAX_DETAILS_CHARS:
        raise ValueError(f"audit details take {len(text)} characters; keep them under {MAX_DETAILS_CHARS}")
    return text


def check_text(field: str, value: str) -> str:
    """Actor and subject: short, printable, non-empty."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"audit {field} must be a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT_CHARS or not value.isprintable():
        raise ValueError(f"audit {field} must be printable and at most {MAX_TEXT_CHARS} characters, got {value!r}")
    return value


def _check_value(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str):
            _check_string(value, path)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value} is not a finite number; audit details must be JSON-safe")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} is not a string; audit details must be JSON-safe")
            _check_value(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        numbers = sum(isinstance(item, int | float) and not isinstance(item, bool) for item in value)
        if numbers > MAX_NUMBERS_IN_A_LIST:
            raise ValueError(
                f"{path}: a list of {numbers} numbers looks like an embedding; audit details must never hold"
                " embeddings or face data, only ids, counts and reasons"
            )
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]")
        return
    raise ValueError(
        f"{path}: {type(value).__name__} is not allowed in audit details (only str, int, float, bool, None, lists"
        " and mappings); never put embeddings, images or face crops in the audit log"
    )


def _check_string(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{path}: the string is not valid Unicode text ({exc.reason})") from exc
