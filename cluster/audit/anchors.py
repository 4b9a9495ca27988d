"""Anchors: the chain's head written down outside the database, so that truncation and rollback show.

The head record in the database says where the chain ends, but whoever can write the database
can cut the tail and restore an older, validly sealed head record with it. An anchor file kept
apart from the database (its own path, append-only, mode 0600) records the head over time: one
line per anchor, a JSON record of when, seq, hash and key id, sealed with the audit key so a line
cannot be forged or edited without it. `lfr audit verify` checks the chain against every line: a
chain that no longer reaches an anchor was truncated or rolled back, one whose entry at an
anchor's seq has another hash was rewritten.

`AnchorWriter` keeps the file current: after a process's appends commit (at most once per
`min_interval_s`, so a busy API server writes a line every few seconds, not one per request),
on a timer in long-lived processes (`start`/`stop`), and when the process stops or exits.
"""

import atexit
import errno
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from cluster.audit.entry import AuditAnchor, anchor_payload, canonical_json
from cluster.audit.sealing import Sealer
from cluster.periodic import Periodic

log = structlog.get_logger(__name__)

ANCHOR_FILE_MODE = 0o600
RECORD_FIELDS = frozenset({"at", "seq", "hash", "key_id", "seal"})
MAX_LINE_CHARS = 1024
"""An anchor line is about 200 characters; anything far longer is not one."""


class AnchorFileError(ValueError):
    """A line of the anchor file that is not a sealed anchor: forged, edited, or sealed with another key."""

    def __init__(self, path: Path, line: int, detail: str) -> None:
        super().__init__(f"line {line} of the anchor file {path} {detail}")
        self.path, self.line = path, line


@dataclass(frozen=True)
class AnchorRecord:
    """One line of the anchor file: the head (seq, hash) at time `at`, under key `key_id`, sealed."""

    at: float
    seq: int
    hash: str
    key_id: str
    seal: str

    @classmethod
    def sealed(cls, sealer: Sealer, head: AuditAnchor, at: float) -> "AnchorRecord":
        seal = sealer.digest(anchor_payload(at, head.seq, head.hash, sealer.key_id))
        return cls(at=at, seq=head.seq, hash=head.hash, key_id=sealer.key_id, seal=seal)

    @property
    def head(self) -> AuditAnchor:
        return AuditAnchor(self.seq, self.hash)

    def to_line(self) -> str:
        return canonical_json(asdict(self)) + "\n"


@dataclass(frozen=True)
class AnchorLine:
    """A verified anchor and where it was read: its line number in the file."""

    line: int
    record: AnchorRecord

    def describe(self, path: Path) -> str:
        return f"line {self.line} of {path} (written at {self.record.at:.3f})"


class AnchorFile:
    """The append-only file of anchors at `path`; its folder must exist."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()

    def exists(self) -> bool:
        return self.path.is_file()

    def append(self, record: AnchorRecord) -> None:
        """Add one line with a single O_APPEND write, so lines from several processes never interleave."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = record.to_line().encode("utf-8")
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, ANCHOR_FILE_MODE)
        try:
            written = os.write(descriptor, line)
            if written < len(line):
                _cut_short_line(descriptor, written)
                raise OSError(errno.ENOSPC, f"only {written} of {len(line)} bytes of an anchor line fitted", self.path)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def read(self, sealer: Sealer) -> list[AnchorLine]:
        """Every line, each checked against `sealer`; the first line that does not verify raises AnchorFileError."""
        return list(self._lines(sealer))

    def _lines(self, sealer: Sealer) -> Iterator[AnchorLine]:
        with self.path.open("r", encoding="utf-8", errors="replace") as file:
            for number, text in enumerate(file, start=1):
                record = self._parse(number, text)
                if record.key_id != sealer.key_id:
                    written = f"HMAC key id {record.key_id}" if record.key_id else "no HMAC key"
                    raise AnchorFileError(
                        self.path,
                        number,
                        f"was sealed with {written}, but this check uses {sealer.describe()}:"
                        " verify with the key the log was written with",
                    )
                if sealer.digest(anchor_payload(record.at, record.seq, record.hash, record.key_id)) != record.seal:
                    raise AnchorFileError(
                        self.path, number, f"is not sealed by {sealer.describe()}: it was edited or forged"
                    )
                yield AnchorLine(number, record)

    def _parse(self, number: int, text: str) -> AnchorRecord:
        if len(text) > MAX_LINE_CHARS or not text.endswith("\n"):
            raise AnchorFileError(self.path, number, "is not a whole anchor line: the file was edited or cut")
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise AnchorFileError(self.path, number, f"is not JSON ({exc}): it was edited") from exc
        if not isinstance(fields, dict) or set(fields) != RECORD_FIELDS:
            raise AnchorFileError(self.path, number, f"does not hold the fields {sorted(RECORD_FIELDS)}: it was edited")
        at, seq = fields["at"], fields["seq"]
        texts = (fields["hash"], fields["key_id"], fields["seal"])
        numbers_ok = isinstance(at, int | float) and math.isfinite(at) and type(seq) is int and seq >= 0
        if not numbers_ok or not all(isinstance(value, str) for value in texts):
            raise AnchorFileError(self.path, number, "holds a field of the wrong type: it was edited")
        return AnchorRecord(at=float(at), seq=seq, hash=texts[0], key_id=texts[1], seal=texts[2])


def _cut_short_line(descriptor: int, written: int) -> None:
    """Take back the start of a line that a full disk cut short, so the file holds whole lines only.

    With O_APPEND the offset is the end of what this write put there; the file is cut back only
    while nothing was appended after it.
    """
    end = os.lseek(descriptor, 0, os.SEEK_CUR)
    if written and os.fstat(descriptor).st_size == end:
        os.ftruncate(descriptor, end - written)


class AnchorWriter:
    """Writes the committed head to an anchor file: after appends (rate-bounded), on a timer, and at stop or exit.

    read_head: the head as committed in the database (read afresh, never a value from an open transaction).
    """

    def __init__(
        self,
        file: AnchorFile,
        sealer: Sealer,
        read_head: Callable[[], AuditAnchor],
        *,
        min_interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not min_interval_s > 0:
            raise ValueError(f"the anchor interval must be > 0 s, got {min_interval_s}")
        self.file = file
        self._sealer = sealer
        self._read_head = read_head
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._written: AuditAnchor | None = None
        self._written_at = -float("inf")
        self._pending = False
        self._timer: Periodic | None = None
        _LIVE_WRITERS.add(self)

    @property
    def pending(self) -> bool:
        """Appends committed since the last line was written."""
        return self._pending

    def appended(self) -> None:
        """An append has committed: write the head now unless a line was written under `min_interval_s` ago."""
        self._pending = True
        if time.monotonic() - self._written_at >= self._min_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write the committed head if it moved since this writer's last line; a failure is logged, not raised."""
        with self._lock:
            try:
                head = self._read_head()
                if head.seq > 0 and head != self._written:
                    self.file.append(AnchorRecord.sealed(self._sealer, head, float(self._clock())))
                    self._written = head
                self._written_at = time.monotonic()
                self._pending = False
            except Exception as exc:  # the append it follows has committed; a lost line must not undo it
                log.error("audit_anchor_not_written", path=str(self.file.path), error=str(exc))

    def start(self, interval_s: float | None = None) -> None:
        """Write the head every `interval_s` (default: min_interval_s) on a thread of its own, until `stop`."""
        if self._timer is not None:
            raise RuntimeError("the anchor writer is already started")
        period = self._min_interval_s if interval_s is None else interval_s
        if not period > 0:
            raise ValueError(f"the anchor interval must be > 0 s, got {period}")
        self._timer = Periodic("audit-anchor", self.flush, period, run_at_start=False)
        self._timer.start()
        log.info("audit_anchor_timer_started", path=str(self.file.path), interval_s=period)

    def stop(self) -> None:
        """Stop the timer, if started, and write the head a last time."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
        self.flush()


_LIVE_WRITERS: "weakref.WeakSet[AnchorWriter]" = weakref.WeakSet()


@atexit.register
def _flush_pending_at_exit() -> None:
    """A command's last appends within the rate bound are written down when it exits."""
    for writer in list(_LIVE_WRITERS):
        if writer.pending:
            writer.flush()
