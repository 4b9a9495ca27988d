"""Bulk enrolment of a manifest into a watchlist: the work behind `lfr watchlist import`.

Rows go in file order, `ENROL_CHUNK` at a time, so a 10,000-row manifest never holds more
than one chunk of faces in memory nor makes one giant insert. For each chunk: the keys of its
rows are looked up (a row whose face the watchlist already holds is skipped before its photo
is decoded), the rest go through `choose_each_face` (a few photos per pipeline call), and
the faces chosen are handed to the `enrol` callable as one `ChunkToEnrol`. The application
layer (`cluster.application.watchlists`) supplies it: it enrols the chunk as one batch and
appends each row's audit entry in one audit transaction (one hash chain, one commit).

Write order, and what a crash leaves:
1. Milvus insert of the chunk's rows (batch pending in the catalogue);
2. catalogue commit: the batch marked committed and the rows' keys recorded in one SQLite
   transaction (`Catalogue.finish_batch`);
3. the commit of the chunk's audit entries.
A crash before 2 leaves a pending batch that no version ever searches and no keys, so the
next run enrols those rows again. A crash between 2 and 3 leaves at most one chunk enrolled
without its per-row audit entries; the "import started" entry, written before any chunk and
never followed by its "finished" entry, shows that an import stopped there.

A dry run does all the reading and detection and none of the writing.
"""

import csv
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from cluster.enrolment.faces import ChosenFace, choose_each_face, watchlist_entry
from cluster.enrolment.manifest import ManifestRow, RowRefusal, row_message
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.records import Enrolment, WatchlistEntry
from cluster.gallery.watchlists import Watchlists
from cluster.vision.pipeline import FacePipeline

ENROL_CHUNK = 256
"""Manifest rows per `enrol` call (one enrolment batch, one audit transaction)."""
REPORT_COLUMNS = ("row", "status", "person_id", "photo", "face_index", "entry_id", "batch", "column", "reason")

log = structlog.get_logger(__name__)


class RowStatus(enum.StrEnum):
    """What became of a manifest row."""

    ENROLLED = "enrolled"
    WOULD_ENROL = "would-enrol"
    """A dry run found its one face; a real run would enrol it."""
    SKIPPED = "skipped-already-enrolled"
    REFUSED = "refused"


@dataclass(frozen=True)
class RowOutcome:
    """One row's result; person_id and photo as the manifest resolved them (as written, for a refused row)."""

    number: int
    status: RowStatus
    person_id: str
    photo: str
    face_index: int | None = None
    entry_id: str | None = None
    batch: int | None = None
    column: str = ""
    reason: str = ""

    @classmethod
    def refused(cls, refusal: RowRefusal) -> "RowOutcome":
        return cls(
            refusal.number,
            RowStatus.REFUSED,
            refusal.person_id,
            refusal.photo,
            column=refusal.column,
            reason=refusal.reason,
        )

    def describe(self) -> str:
        """'row 7, photo: ...' for a refusal, as stderr shows it."""
        return row_message(self.number, self.column, self.reason)


@dataclass(frozen=True)
class ImportTarget:
    """Where and by whom a manifest is imported: the watchlist, the officer the entries name, the manifest."""

    watchlist_id: str
    officer: str
    manifest: Path


@dataclass(frozen=True, eq=False)
class ChunkToEnrol:
    """A chunk's rows whose face was chosen, each row's entry and enrolment key, in the same order."""

    rows: tuple[tuple[ManifestRow, ChosenFace], ...]
    entries: tuple[WatchlistEntry, ...]
    keys: tuple[EnrolmentKey, ...]


class ManifestImport:
    """Enrols a manifest's rows into one watchlist (or, dry, says what it would enrol).

    enrol: stores a chunk as one batch and records it (see the module docstring); never called in a
    dry run. progress: called with a count of rows each time rows are decided, for a progress
    bar that moves photo by photo rather than chunk by chunk.
    """

    def __init__(
        self,
        watchlists: Watchlists,
        pipeline: FacePipeline,
        target: ImportTarget,
        *,
        enrol: Callable[[ChunkToEnrol], Enrolment],
        dry_run: bool,
        progress: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self.watchlists = watchlists
        self.pipeline = pipeline
        self.target = target
        self.enrol = enrol
        self.dry_run = dry_run
        self.progress = progress

    def run(self, rows: Sequence[ManifestRow | RowRefusal]) -> Iterator[RowOutcome]:
        """Every row's outcome, in file order, chunk by chunk (a chunk's rows come once it is enrolled)."""
        for start in range(0, len(rows), ENROL_CHUNK):
            yield from self._chunk(rows[start : start + ENROL_CHUNK])

    def _chunk(self, chunk: Sequence[ManifestRow | RowRefusal]) -> list[RowOutcome]:
        outcomes = [RowOutcome.refused(item) for item in chunk if isinstance(item, RowRefusal)]
        rows = [item for item in chunk if isinstance(item, ManifestRow)]
        enrolled = self.watchlists.enrolled(self.target.watchlist_id, [row.key for row in rows]) if rows else {}
        outcomes += [
            RowOutcome(
                row.number,
                RowStatus.SKIPPED,
                row.person_id,
                str(row.photo),
                face_index=row.key.face_index,
                entry_id=enrolled[row.key],
            )
            for row in rows
            if row.key in enrolled
        ]
        self.progress(len(outcomes))
        pending = [row for row in rows if row.key not in enrolled]
        chosen: list[tuple[ManifestRow, ChosenFace]] = []
        for row, result in zip(pending, choose_each_face(self.pipeline, [(row.photo, row.face) for row in pending])):
            self.progress(1)
            if isinstance(result, ChosenFace):
                chosen.append((row, result))
            else:
                outcomes.append(
                    RowOutcome(
                        row.number,
                        RowStatus.REFUSED,
                        row.person_id,
                        str(row.photo),
                        column="photo",
                        reason=result.reason,
                    )
                )
        if chosen:
            outcomes += self._would_enrol(chosen) if self.dry_run else self._enrol(chosen)
        return sorted(outcomes, key=lambda outcome: outcome.number)

    @staticmethod
    def _would_enrol(chosen: Sequence[tuple[ManifestRow, ChosenFace]]) -> list[RowOutcome]:
        return [
            RowOutcome(row.number, RowStatus.WOULD_ENROL, row.person_id, str(row.photo), face_index=face.index)
            for row, face in chosen
        ]

    def _enrol(self, chosen: Sequence[tuple[ManifestRow, ChosenFace]]) -> list[RowOutcome]:
        """One enrolment batch for the chunk's chosen faces, recorded row by row by `enrol`."""
        target = self.target
        entries = tuple(
            watchlist_entry(
                face,
                person_id=row.person_id,
                label=row.label,
                category=row.category,
                source=row.source,
                authorised_by=target.officer,
                expires_at=row.expires_at,
            )
            for row, face in chosen
        )
        enrolment = self.enrol(ChunkToEnrol(tuple(chosen), entries, tuple(row.key for row, _ in chosen)))
        log.info(
            "manifest_chunk_enrolled", watchlist_id=target.watchlist_id, batch=enrolment.batch, entries=len(entries)
        )
        return [
            RowOutcome(
                row.number,
                RowStatus.ENROLLED,
                row.person_id,
                str(row.photo),
                face_index=face.index,
                entry_id=entry_id,
                batch=enrolment.batch,
            )
            for (row, face), entry_id in zip(chosen, enrolment.entry_ids)
        ]


class ImportReport:
    """The per-row report of an import (`--report FILE.csv`): one CSV line per manifest row, `REPORT_COLUMNS`.

    Written as rows are decided and flushed line by line, so an import stopped half-way still
    leaves the report of every row it got to.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(REPORT_COLUMNS)

    def add(self, outcome: RowOutcome) -> None:
        self._writer.writerow(
            (
                outcome.number,
                outcome.status.value,
                outcome.person_id,
                outcome.photo,
                "" if outcome.face_index is None else outcome.face_index,
                outcome.entry_id or "",
                "" if outcome.batch is None else outcome.batch,
                outcome.column,
                outcome.reason,
            )
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()
