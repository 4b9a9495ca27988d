"""`DeadLetters`: alerts the store could not take, kept until it takes them, so no sighting is lost.

When the records database is briefly unavailable (locked, unreachable, read-only) and a save
has failed after its retries, the Coordinator hands the alert here. Each is written to a spool
folder, one owner-only file per alert (0600 in a 0700 folder), and held in memory in the order
it came; the Coordinator redelivers them, oldest first, before its next save and on a timer.
A later version of an alert (more sightings) replaces the earlier one, since a save adds what
the store lacks. A Coordinator that starts over a spool left by an earlier run (a crash, a stop
while the store was down) redelivers it first: an operator replays dead letters by starting
the deployment again.

Only alerts are ever kept here, and alerts are made only of sightings of possible matches: a
face that matched nobody never reaches the Coordinator, so none is ever dead-lettered. A file
is deleted once its alert is stored.

The spool is bounded (`max_alerts`): beyond it an alert is refused, and the Coordinator logs
its sightings as lost, so an outage that outlasts the bound shows, never fills the disk.
"""

import base64
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.private_files import private_folder, write_private

log = structlog.get_logger(__name__)

MAX_ALERTS = 10_000
"""Alerts the spool holds at most: days of an outage at tens of alerts an hour (a crop is a few KB)."""
FORMAT = 1
SUFFIX = ".alert.json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class DeadLettersFullError(RuntimeError):
    """The spool holds `max_alerts` alerts already; a new one would be lost."""


@dataclass(frozen=True)
class _Letter:
    queued_at: float
    alert: Alert


class DeadLetters:
    """A bounded spool of undelivered alerts; see the module docstring."""

    def __init__(self, folder: Path, max_alerts: int = MAX_ALERTS) -> None:
        if max_alerts < 1:
            raise ValueError(f"max_alerts must be at least 1, got {max_alerts}")
        self.folder = folder
        self.max_alerts = max_alerts
        self._letters: dict[str, _Letter] = {}
        for letter in sorted(self._read_spool(), key=lambda letter: letter.queued_at):
            self._letters[letter.alert.alert_id] = letter
        if self._letters:
            log.warning("dead_letters_found", folder=str(folder), alerts=len(self._letters))

    def __len__(self) -> int:
        return len(self._letters)

    @property
    def sightings(self) -> int:
        """Sightings held in the spool, for the logs and reports."""
        return sum(len(letter.alert.sightings) for letter in self._letters.values())

    def put(self, alert: Alert) -> None:
        """Keep `alert` (replacing an earlier version of it) until `delivered`; DeadLettersFullError when full."""
        _check_id(alert.alert_id)
        earlier = self._letters.get(alert.alert_id)
        if earlier is None and len(self._letters) >= self.max_alerts:
            raise DeadLettersFullError(
                f"the dead-letter spool {self.folder} holds {self.max_alerts} alerts already: bring the records"
                " database back, or raise the bound"
            )
        queued_at = time.time() if earlier is None else earlier.queued_at
        private_folder(self.folder)
        write_private(self._path(alert.alert_id), _encode(queued_at, alert))
        self._letters.pop(alert.alert_id, None)
        self._letters[alert.alert_id] = _Letter(queued_at, alert)
        if earlier is not None:
            self._reorder()

    def pending(self) -> list[Alert]:
        """The alerts waiting, oldest first."""
        return [letter.alert for letter in self._letters.values()]

    def holds(self, alert_id: str) -> bool:
        return alert_id in self._letters

    def delivered(self, alert_id: str) -> None:
        """The store has the alert (this version or a later one): forget it and delete its file."""
        if self._letters.pop(alert_id, None) is not None:
            self._path(alert_id).unlink(missing_ok=True)

    def _reorder(self) -> None:
        self._letters = dict(sorted(self._letters.items(), key=lambda item: item[1].queued_at))

    def _path(self, alert_id: str) -> Path:
        return self.folder / f"{alert_id}{SUFFIX}"

    def _read_spool(self) -> list[_Letter]:
        if not self.folder.is_dir():
            return []
        letters = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                letters.append(_decode(path.read_bytes()))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"dead letter {path} cannot be read ({type(exc).__name__}: {exc}); move it out of {self.folder}"
                    " and replay it by hand, or delete it if its alert is in the records database"
                ) from exc
        return letters


def _check_id(alert_id: str) -> None:
    if not _SAFE_ID.match(alert_id):
        raise ValueError(f"alert id {alert_id!r} cannot name a dead-letter file: use letters, digits, '_' and '-'")


def _bytes(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unbytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def _encode(queued_at: float, alert: Alert) -> bytes:
    """The alert as the store saves it: its own fields and its sightings (no decision, which officers own)."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "queued_at": queued_at,
        "alert": {
            "alert_id": alert.alert_id,
            "deployment_id": alert.deployment_id,
            "person_id": alert.person_id,
            "watchlist_id": alert.watchlist_id,
            "state": AlertState(alert.state).value,
            "confidence": alert.confidence,
            "created_at": alert.created_at,
            "updated_at": alert.updated_at,
            "threshold": alert.threshold,
            "model": alert.model,
            "target_fpir": alert.target_fpir,
            "expected_tpir": alert.expected_tpir,
        },
        "sightings": [
            {
                "sighting_id": s.sighting_id,
                "camera_id": s.camera_id,
                "person_id": s.person_id,
                "watchlist_id": s.watchlist_id,
                "similarity": float(s.similarity),
                "first_seen": float(s.first_seen),
                "last_seen": float(s.last_seen),
                "frames": int(s.frames),
                "embedding": None if s.embedding is None else _bytes(np.asarray(s.embedding, dtype="<f4").tobytes()),
                "crop_jpeg": _bytes(s.crop_jpeg),
                "box": None if s.box is None else [float(v) for v in np.asarray(s.box, dtype=np.float64)],
                "model_scores": {model: float(score) for model, score in s.model_scores.items()},
            }
            for s in alert.sightings
        ],
    }
    return json.dumps(document).encode("utf-8")


def _decode(data: bytes) -> _Letter:
    document = json.loads(data)
    if document.get("format") != FORMAT:
        raise ValueError(f"format {document.get('format')!r}, expected {FORMAT}")
    fields = dict(document["alert"])
    fields["state"] = AlertState(fields["state"])
    sightings = []
    for values in document["sightings"]:
        values = dict(values)
        embedding = _unbytes(values.pop("embedding"))
        values["embedding"] = None if embedding is None else np.frombuffer(embedding, dtype="<f4").copy()
        values["crop_jpeg"] = _unbytes(values["crop_jpeg"])
        values["box"] = None if values["box"] is None else np.array(values["box"], dtype=np.float64)
        sightings.append(Sighting(**values))
    return _Letter(float(document["queued_at"]), Alert(**fields, sightings=tuple(sightings)))
