"""Verifying the audit chain: recompute every hash and link, check the head record and the anchors written
outside the database, and say where and how it first breaks."""

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from cluster.audit.anchors import AnchorFile, AnchorFileError
from cluster.audit.entry import GENESIS_HASH, AuditAnchor, entry_payload, head_payload
from cluster.audit.sealing import Sealer
from cluster.audit.tables import audit_head, audit_log
from cluster.database.engine import Database

PAGE_SIZE = 2000


class Problem(enum.StrEnum):
    """Why the chain does not verify."""

    EDITED = "edited"
    """An entry's fields no longer match its hash."""
    BROKEN_LINK = "broken_link"
    """An entry's prev_hash is not the hash of the entry before it: that one was rewritten with a new hash."""
    REMOVED = "removed"
    """A seq number is missing from the chain."""
    REORDERED = "reordered"
    """An entry links to another entry than the one before it: entries were swapped or moved."""
    BAD_GENESIS = "bad_genesis"
    """The first entry does not start from the genesis hash."""
    TRUNCATED = "truncated"
    """Entries are missing from the end (the head record or the anchor says the chain went further)."""
    HEAD_MISSING = "head_missing"
    """The head record is gone: the log was wiped (a log is made with its head record, which is never deleted)."""
    HEAD_MISMATCH = "head_mismatch"
    """The head record is forged, or disagrees with the last entry."""
    WRONG_KEY = "wrong_key"
    """An entry was sealed with another HMAC key (or none) than the one verifying it."""
    ANCHOR_MISMATCH = "anchor_mismatch"
    """The entry at the anchor's seq does not have the anchor's hash."""
    ANCHOR_FORGED = "anchor_forged"
    """A line of the anchor file is not sealed by the key: the file was edited, or lines were forged."""
    NO_ANCHOR_FILE = "no_anchor_file"
    """The log holds entries but its anchor file is gone, so truncation and rollback could not be checked."""


@dataclass(frozen=True)
class AnchorCheck:
    """What the chain is checked against besides its head record: an anchor given by hand, and the anchor file."""

    anchor: AuditAnchor | None = None
    file: AnchorFile | None = None


@dataclass(frozen=True)
class _Anchored:
    anchor: AuditAnchor
    source: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verification: either ok with the chain's head, or the first bad entry and why."""

    entries_checked: int
    head: AuditAnchor | None
    first_bad_seq: int | None = None
    problem: Problem | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.ok:
            end = f"head {self.head}" if self.head is not None else "empty log"
            return f"ok: {self.entries_checked} entries verified, {end}"
        where = "" if self.first_bad_seq is None else f" at entry {self.first_bad_seq}"
        return f"FAILED{where} ({self.problem}): {self.detail}"


class _Broken(Exception):
    def __init__(self, seq: int | None, problem: Problem, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.problem, self.detail = seq, problem, detail


def verify_chain(database: Database, sealer: Sealer, check: AnchorCheck = AnchorCheck()) -> VerifyReport:
    """Walk the whole chain in seq order inside one snapshot; check it against its head record and every anchor."""
    checked = 0
    last: sa.Row | None = None
    unreadable: AnchorFileError | None = None
    try:
        anchors = _anchors(check, sealer)
    except AnchorFileError as exc:  # reported after the chain: a wrong key shows there first, by its name
        anchors, unreadable = [], exc
    wanted: dict[int, list[_Anchored]] = defaultdict(list)
    for anchored in anchors:
        wanted[anchored.anchor.seq].append(anchored)
    with database.reading() as connection:
        try:
            for row in _rows(connection):
                _check_entry(connection, sealer, row, last)
                for anchored in wanted.get(row.seq, ()):
                    _check_anchored(anchored, row)
                last, checked = row, checked + 1
            _check_end(connection, sealer, last)
            if unreadable is not None:
                raise _Broken(None, Problem.ANCHOR_FORGED, str(unreadable))
            _check_reach(anchors, last)
            _check_anchor_file(check.file, last)
        except _Broken as broken:
            return VerifyReport(checked, None, broken.seq, broken.problem, broken.detail)
    head = AuditAnchor(last.seq, last.hash) if last is not None else None
    return VerifyReport(checked, head)


def _anchors(check: AnchorCheck, sealer: Sealer) -> list[_Anchored]:
    anchors = [] if check.anchor is None else [_Anchored(check.anchor, "the anchor given with --anchor")]
    if check.file is not None and check.file.exists():
        anchors += [_Anchored(line.record.head, line.describe(check.file.path)) for line in check.file.read(sealer)]
    return [anchored for anchored in anchors if anchored.anchor.seq > 0]


def _rows(connection: sa.Connection):
    after = 0
    while True:
        query = sa.select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(PAGE_SIZE)
        rows = list(connection.execute(query))
        yield from rows
        if len(rows) < PAGE_SIZE:
            return
        after = rows[-1].seq


def _check_entry(connection: sa.Connection, sealer: Sealer, row: sa.Row, previous: sa.Row | None) -> None:
    expected_seq = 1 if previous is None else previous.seq + 1
    if row.seq != expected_seq:
        follows = "the log starts" if previous is None else f"entry {previous.seq} is followed"
        raise _Broken(expected_seq, Problem.REMOVED, f"entry {expected_seq} is missing: {follows} by entry {row.seq}")
    if previous is None and row.prev_hash != GENESIS_HASH:
        raise _Broken(1, Problem.BAD_GENESIS, f"entry 1 links to {row.prev_hash[:16]}..., not to the genesis hash")
    if previous is not None and row.prev_hash != previous.hash:
        linked = connection.execute(sa.select(audit_log.c.seq).where(audit_log.c.hash == row.prev_hash)).scalar()
        if linked is not None:
            raise _Broken(
                row.seq,
                Problem.REORDERED,
                f"entry {row.seq} links to entry {linked}, not to entry {previous.seq}: entries were swapped or moved",
            )
        raise _Broken(
            row.seq,
            Problem.BROKEN_LINK,
            f"entry {row.seq} does not link to entry {previous.seq}'s hash: entry {previous.seq} was rewritten"
            f" with a recomputed hash, or entry {row.seq}'s link was edited",
        )
    if row.key_id != sealer.key_id:
        written = f"HMAC key id {row.key_id}" if row.key_id else "no HMAC key"
        raise _Broken(
            row.seq,
            Problem.WRONG_KEY,
            f"entry {row.seq} was sealed with {written}, but this check uses {sealer.describe()}:"
            " verify with the key the log was written with",
        )
    payload = entry_payload(row.seq, row.at, row.actor, row.action, row.subject, row.details, row.key_id, row.prev_hash)
    if sealer.digest(payload) != row.hash:
        raise _Broken(row.seq, Problem.EDITED, f"entry {row.seq}'s fields do not match its hash: it was edited")


def _check_end(connection: sa.Connection, sealer: Sealer, last: sa.Row | None) -> None:
    last_seq = 0 if last is None else last.seq
    last_hash = GENESIS_HASH if last is None else last.hash
    head = connection.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash, audit_head.c.key_id, audit_head.c.seal)
    ).one_or_none()
    if head is None:
        held = "holds no entries" if last is None else f"ends at entry {last_seq}"
        raise _Broken(
            last_seq + 1 if last is None else last_seq,
            Problem.HEAD_MISSING,
            f"the head record is missing and the log {held}: the log was wiped or its head deleted (a log is"
            " made with its head record, which is never removed)",
        )
    if head.key_id != sealer.key_id:
        written = f"HMAC key id {head.key_id}" if head.key_id else "no HMAC key"
        raise _Broken(
            head.seq + 1,
            Problem.WRONG_KEY,
            f"the head record says the log is sealed with {written}, but this check uses {sealer.describe()}:"
            " verify with the key the log was written with",
        )
    if sealer.digest(head_payload(head.seq, head.hash, head.key_id)) != head.seal:
        raise _Broken(
            head.seq + 1,
            Problem.HEAD_MISMATCH,
            f"the head record (entry {head.seq}) is not sealed by {sealer.describe()}: it was forged or rewound",
        )
    if head.seq > last_seq:
        raise _Broken(
            last_seq + 1,
            Problem.TRUNCATED,
            f"entries {last_seq + 1}..{head.seq} are missing from the end: the head record says the chain"
            f" reached entry {head.seq}",
        )
    if head.seq < last_seq:
        raise _Broken(
            head.seq + 1,
            Problem.HEAD_MISMATCH,
            f"entries {head.seq + 1}..{last_seq} lie beyond the head record: they were added outside the log writer",
        )
    if head.hash != last_hash:
        raise _Broken(
            last_seq, Problem.HEAD_MISMATCH, f"the head record's hash differs from entry {last_seq}'s: it was rewritten"
        )


def _check_anchored(anchored: _Anchored, row: sa.Row) -> None:
    if row.hash != anchored.anchor.hash:
        raise _Broken(
            row.seq,
            Problem.ANCHOR_MISMATCH,
            f"entry {row.seq}'s hash differs from {anchored.source}: the chain was rewritten up to there",
        )


def _check_reach(anchors: Sequence[_Anchored], last: sa.Row | None) -> None:
    last_seq = 0 if last is None else last.seq
    beyond = [anchored for anchored in anchors if anchored.anchor.seq > last_seq]
    if beyond:
        furthest = max(beyond, key=lambda anchored: anchored.anchor.seq)
        raise _Broken(
            last_seq + 1,
            Problem.TRUNCATED,
            f"{furthest.source} says the chain reached entry {furthest.anchor.seq}, but it ends at entry {last_seq}:"
            " entries were cut from the end, or an older head record was restored",
        )


def _check_anchor_file(file: AnchorFile | None, last: sa.Row | None) -> None:
    if file is None or last is None or file.exists():
        return
    raise _Broken(
        None,
        Problem.NO_ANCHOR_FILE,
        f"there is no anchor file at {file.path}, though the log holds {last.seq} entries: it was deleted or"
        " moved (give its path with --anchor-file), or the log was written without one; --no-anchor-file verifies"
        " without it, but then a cut tail or a restored older head record goes unseen",
    )
