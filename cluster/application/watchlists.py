"""`WatchlistService`: every change an officer makes to a watchlist, each done and audited in one place.

Create, enrol (photos of one person, prepared entries, or a whole manifest), freeze with a
calibrated threshold, remove a person, purge what has expired: the CLI, the demo, the retention
timer and any other caller go through these methods, so no path changes a watchlist without the
audit entries naming who did it: an intent before the change, its outcome after (see
`cluster.application.audited`). Reading a watchlist is audited as a request, as personal data is
shown. Audit details hold ids, counts and bounded summaries of file lists, never an embedding.
"""

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.application.audited import AuditedOperation, audited_change, audited_changes
from cluster.audit.actions import AuditAction
from cluster.audit.bounded import name_summary
from cluster.audit.log import AuditLog
from cluster.config import LfrConfig
from cluster.enrolment.expiry import iso
from cluster.enrolment.faces import ChosenFace, RefusedPhoto, choose_faces, watchlist_entry
from cluster.enrolment.manifest import ManifestRow, RowRefusal, read_manifest
from cluster.enrolment.manifest_import import ChunkToEnrol, ImportTarget, ManifestImport, RowOutcome, RowStatus
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import (
    EnrolledEntry,
    Enrolment,
    PersonRecord,
    Watchlist,
    WatchlistEntry,
    WatchlistVersion,
)
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.scoring import match_scoring
from cluster.retro.versions import choose_version
from cluster.vision.pipeline import FacePipeline

DEFAULT_CATEGORY = "wanted"


def watchlist_subject(watchlist_id: str) -> str:
    """How audit entries name a watchlist."""
    return f"watchlist:{watchlist_id}"


@dataclass(frozen=True)
class SearchedVersion:
    """The frozen, verified version a search or watch runs against, and the threshold calibrated for it."""

    version: WatchlistVersion
    calibration: CalibratedThreshold


@dataclass(frozen=True)
class Person:
    """Who the photos of one `add_photos` call show, and what their entries carry.

    source: where the photos came from (None: each photo's own path). expires_at: None for the watchlist's expiry.
    attributes: what the enrolling officer recorded about the person (sex, ethnicity, age band; each optional),
    for the deployment reports' breakdown of alerts.
    """

    person_id: str
    label: str
    category: str = DEFAULT_CATEGORY
    source: str | None = None
    expires_at: int | None = None
    attributes: PersonAttributes = PersonAttributes()


@dataclass(frozen=True)
class PhotoEnrolment:
    """What `add_photos` did: the batch (None when every photo was refused), the faces taken and the photos refused."""

    watchlist: Watchlist
    officer: str
    enrolment: Enrolment | None
    chosen: tuple[ChosenFace, ...]
    refused: tuple[RefusedPhoto, ...]


@dataclass(frozen=True)
class WatchlistOverview:
    """A watchlist with how many entries it holds and its frozen versions."""

    watchlist: Watchlist
    entry_count: int
    versions: tuple[WatchlistVersion, ...]


@dataclass(frozen=True)
class WatchlistDetail:
    """A watchlist with each of its entries and its frozen versions."""

    watchlist: Watchlist
    entries: tuple[EnrolledEntry, ...]
    versions: tuple[WatchlistVersion, ...]


@dataclass(frozen=True)
class ImportPlan:
    """A manifest read and checked against its watchlist, ready to run: where, by whom, and every row."""

    target: ImportTarget
    rows: tuple[ManifestRow | RowRefusal, ...]
    dry_run: bool


@dataclass
class ImportTally:
    """The running counts of an import, updated as each row is decided.

    The caller holds it, so when an import stops part-way it can still say how far it got.
    """

    rows: int
    counts: dict[RowStatus, int] = field(default_factory=lambda: dict.fromkeys(RowStatus, 0))
    refused_rows: list[int] = field(default_factory=list)
    batches: set[int] = field(default_factory=set)

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: RowOutcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.batch is not None:
            self.batches.add(outcome.batch)
        if outcome.status is RowStatus.REFUSED:
            self.refused_rows.append(outcome.number)

    def record(self) -> dict[str, Any]:
        """The counts as the import's closing audit entry holds them, rows and batches as ranges of numbers."""
        return {
            "batches": number_ranges(self.batches),
            **{status.value: count for status, count in self.counts.items()},
            "refused_rows": number_ranges(self.refused_rows),
        }


def number_ranges(numbers: Sequence[int] | set[int]) -> str:
    """'3-9, 11' for 3,4,...,9,11: row and batch numbers as text, since the audit log refuses long lists
    of numbers (they look like embeddings) and an import may refuse thousands of rows."""
    spans: list[list[int]] = []
    for number in sorted(set(numbers)):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in spans)


class WatchlistService:
    """Watchlist changes on one gallery, each recorded in the audit log with the officer who made it."""

    def __init__(self, gallery: Gallery, audit: AuditLog, config: LfrConfig) -> None:
        self.gallery = gallery
        self.audit = audit
        self.config = config

    def create(
        self,
        watchlist_id: str,
        *,
        name: str,
        reason: str,
        authorised_by: str,
        expires_at: int,
        officer: str | None = None,
    ) -> Watchlist:
        """Record a newly authorised watchlist; officer None: the authorising officer records it."""
        return audited_change(
            self.audit,
            officer or authorised_by,
            AuditAction.WATCHLIST_CHANGE,
            watchlist_subject(watchlist_id),
            lambda: self.gallery.watchlists.create(watchlist_id, name, reason, authorised_by, expires_at),
            lambda watchlist: {
                "change": "created",
                "authorised_by": watchlist.authorised_by,
                "reason": watchlist.reason,
                "expires_at": iso(watchlist.expires_at),
            },
            intent={
                "change": "create",
                "authorised_by": authorised_by,
                "reason": reason,
                "expires_at": iso(expires_at),
            },
        )

    def open_for_enrolment(self, watchlist_id: str) -> Watchlist:
        """The watchlist; ValueError when its authorisation has expired, before any photo is read."""
        watchlist = self.gallery.watchlists.get(watchlist_id)
        if watchlist.expires_at <= time.time():
            raise ValueError(
                f"watchlist {watchlist_id!r} expired at {iso(watchlist.expires_at)}; nothing may be enrolled into"
                " it: renew its authorisation (create a new watchlist)"
            )
        return watchlist

    def add_photos(
        self,
        watchlist_id: str,
        photos: Sequence[Path],
        person: Person,
        *,
        officer: str | None = None,
        face_index: int | None = None,
        on_photo: Callable[[ChosenFace | RefusedPhoto], None] = lambda result: None,
    ) -> PhotoEnrolment:
        """Enrol one face of each photo as entries of one person, in one batch, and audit it.

        officer None: the officer who authorised the watchlist. A photo without exactly one face
        (or face `face_index`) is refused and named in the entry; when every photo is refused,
        nothing is enrolled and the entry says so.
        """
        watchlist = self.open_for_enrolment(watchlist_id)
        officer = officer or watchlist.authorised_by
        chosen: list[ChosenFace] = []
        refused: list[RefusedPhoto] = []
        for result in choose_faces(FacePipeline(self.config.face_models), photos, face_index):
            on_photo(result)
            if isinstance(result, ChosenFace):
                chosen.append(result)
            else:
                refused.append(result)
        entries = [
            watchlist_entry(
                face,
                person_id=person.person_id,
                label=person.label,
                category=person.category,
                source=person.source or str(face.path),
                authorised_by=officer,
                expires_at=person.expires_at,
            )
            for face in chosen
        ]
        enrolment = audited_change(
            self.audit,
            officer,
            AuditAction.ENROLMENT,
            watchlist_subject(watchlist.watchlist_id),
            lambda: (
                self._enrol_people(watchlist_id, entries, {person.person_id: person.attributes}, officer)
                if entries
                else None
            ),
            lambda enrolment: {
                "person_id": person.person_id,
                "label": person.label,
                "category": person.category,
                **self._attributes_record([person.attributes]),
                "entries": len(entries),
                "batch": enrolment.batch if enrolment else None,
                "photos": name_summary([str(face.path) for face in chosen]),
                "faces_chosen": ",".join(str(face.index) for face in chosen),
                "refused": name_summary([str(photo.path) for photo in refused]),
            },
            intent={"change": "enrol", "person_id": person.person_id, "entries": len(entries)},
        )
        return PhotoEnrolment(watchlist, officer, enrolment, tuple(chosen), tuple(refused))

    def enrol_entries(
        self,
        watchlist_id: str,
        entries: Sequence[WatchlistEntry],
        *,
        officer: str,
        attributes: Mapping[str, PersonAttributes] | None = None,
    ) -> Enrolment:
        """Enrol prepared entries (faces already embedded, such as the demo's) as one batch, and audit it.

        attributes: what was recorded about each person, by person id (a person not named: nothing recorded).
        """
        watchlist = self.open_for_enrolment(watchlist_id)
        recorded = dict(attributes or {})
        unknown = sorted(set(recorded) - {entry.person_id for entry in entries})
        if unknown:
            raise ValueError(f"attributes given for {', '.join(unknown)}, who have no entry to enrol; drop them")
        return audited_change(
            self.audit,
            officer,
            AuditAction.ENROLMENT,
            watchlist_subject(watchlist.watchlist_id),
            lambda: self._enrol_people(watchlist_id, entries, recorded, officer),
            lambda enrolment: {
                "people": len({entry.person_id for entry in entries}),
                "entries": len(entries),
                "batch": enrolment.batch,
                **self._attributes_record(recorded.values()),
            },
            intent={"change": "enrol", "entries": len(entries)},
        )

    def plan_import(
        self, watchlist_id: str, manifest: Path, *, officer: str | None = None, dry_run: bool = False
    ) -> ImportPlan:
        """Read and check a manifest for `run_import` (ManifestError when it cannot be used); nothing is written.

        officer None: the officer who authorised the watchlist.
        """
        watchlist = self.open_for_enrolment(watchlist_id)
        rows = read_manifest(manifest, watchlist_expires_at=watchlist.expires_at, default_category=DEFAULT_CATEGORY)
        target = ImportTarget(watchlist.watchlist_id, officer or watchlist.authorised_by, manifest)
        return ImportPlan(target, tuple(rows), dry_run)

    def run_import(
        self,
        plan: ImportPlan,
        tally: ImportTally,
        *,
        on_row: Callable[[RowOutcome], None] = lambda outcome: None,
        progress: Callable[[int], None] = lambda rows: None,
    ) -> ImportTally:
        """Enrol the plan's rows, auditing the start (the intent), each row enrolled and the end (the outcome).

        A dry run changes nothing and writes only its closing entry. If the import stops part-way,
        a failed outcome with the counts so far is written and the error raised again; the rows
        enrolled before it stay enrolled, and a re-run enrols the rest.
        """
        target = plan.target
        subject = watchlist_subject(target.watchlist_id)
        record: dict[str, Any] = {"command": "watchlist import", "manifest": str(target.manifest), "rows": tally.rows}
        operation = (
            None
            if plan.dry_run
            else AuditedOperation(
                self.audit, target.officer, AuditAction.REQUEST, subject, {**record, "stage": "started"}
            )
        )
        importer = ManifestImport(
            self.gallery.watchlists,
            FacePipeline(self.config.face_models),
            target,
            enrol=lambda chunk: self._enrol_chunk(target, chunk),
            dry_run=plan.dry_run,
            progress=progress,
        )
        try:
            for outcome in importer.run(plan.rows):
                tally.add(outcome)
                on_row(outcome)
        except BaseException as exc:
            if operation is not None:
                operation.failed(exc, {**record, "stage": "stopped", "rows_done": tally.done, **tally.record()})
            raise
        if operation is None:
            self.audit.record(
                target.officer, AuditAction.REQUEST, subject, {**record, "stage": "dry run", **tally.record()}
            )
        else:
            operation.done({**record, "stage": "finished", **tally.record()})
        return tally

    def _enrol_chunk(self, target: ImportTarget, chunk: ChunkToEnrol) -> Enrolment:
        """One batch for a chunk of manifest rows, with one audit entry per row enrolled, in one audit transaction."""
        return audited_changes(
            self.audit,
            target.officer,
            AuditAction.ENROLMENT,
            watchlist_subject(target.watchlist_id),
            lambda: self._enrol_people(
                target.watchlist_id,
                chunk.entries,
                {row.person_id: row.attributes for row, _ in chunk.rows if row.attributes.recorded()},
                target.officer,
                keys=chunk.keys,
            ),
            lambda enrolment: [
                {
                    "manifest": str(target.manifest),
                    "row": row.number,
                    "person_id": row.person_id,
                    "label": row.label,
                    "category": row.category,
                    "source": row.source,
                    "photo": str(row.photo),
                    "photo_sha256": row.photo_sha256,
                    "face_index": face.index,
                    "faces_found": face.faces_found,
                    "expires_at": None if row.expires_at is None else iso(row.expires_at),
                    **self._attributes_record([row.attributes]),
                    "batch": enrolment.batch,
                    "entry_id": entry_id,
                }
                for (row, face), entry_id in zip(chunk.rows, enrolment.entry_ids)
            ],
            intent={
                "change": "enrol",
                "manifest": str(target.manifest),
                "rows": number_ranges([row.number for row, _ in chunk.rows]),
            },
        )

    def freeze(
        self, watchlist_id: str, *, target_fpir: float | None = None, officer: str, reason: str | None = None
    ) -> WatchlistVersion:
        """Freeze a version for deployments to bind to, its threshold calibrated for `target_fpir` and its size.

        target_fpir None: the configured `matching.target_fpir`. reason: why it was frozen, when not
        at an officer's request (a search of a watchlist that had no version), recorded with it.
        """
        models = self.config.face_models.models
        scoring = match_scoring(models)
        rate = self.config.matching.target_fpir if target_fpir is None else target_fpir
        return audited_change(
            self.audit,
            officer,
            AuditAction.WATCHLIST_CHANGE,
            watchlist_subject(watchlist_id),
            lambda: self.gallery.watchlists.freeze(
                watchlist_id, calibrate=lambda entries: scoring.threshold_for(rate, entries), models=models[1:]
            ),
            lambda version: {
                "change": "frozen",
                "version": version.version_id,
                "entries": version.entry_count,
                **self._composition(version),
                "digest": version.digest,
                "calibration": version.calibration.record() if version.calibration else None,
                **({"reason": reason} if reason else {}),
            },
            intent={"change": "freeze", "target_fpir": rate, **({"reason": reason} if reason else {})},
        )

    def searched_version(
        self, watchlist_id: str, requested: str | None, *, officer: str, frozen_for: str, then: str
    ) -> SearchedVersion:
        """The version a search or watch runs against (`choose_version`: None, the latest, else one frozen now and
        audited with `frozen_for` as its reason), verified against its digest, with its calibrated threshold.

        then: what to do once `lfr watchlist freeze` has made a calibrated version ("search the new version").
        """
        choice = choose_version(
            self.gallery.watchlists,
            watchlist_id,
            requested,
            freeze=lambda: self.freeze(watchlist_id, officer=officer, reason=frozen_for),
        )
        calibration = choice.version.calibration
        if calibration is None:
            raise ValueError(
                f"{choice.version.version_id} was frozen before thresholds were calibrated; run `lfr watchlist"
                f" freeze {watchlist_id}` and {then}"
            )
        self.gallery.watchlists.verify(choice.version)
        return SearchedVersion(choice.version, calibration)

    def remove_person(self, watchlist_id: str, person_id: str, *, officer: str) -> int:
        """Delete every entry of a person from the watchlist (and so from all its versions); how many were deleted."""
        return audited_change(
            self.audit,
            officer,
            AuditAction.WATCHLIST_CHANGE,
            watchlist_subject(watchlist_id),
            lambda: self._remove_person(watchlist_id, person_id),
            lambda deleted: {"change": "person_removed", "person_id": person_id, "entries_deleted": deleted},
            intent={"change": "remove_person", "person_id": person_id},
        )

    def _enrol_people(
        self,
        watchlist_id: str,
        entries: Sequence[WatchlistEntry],
        attributes: Mapping[str, PersonAttributes],
        officer: str,
        keys: Sequence[EnrolmentKey] | None = None,
    ) -> Enrolment:
        """Enrol the entries, then record each person's category and attributes beside the catalogue."""
        enrolment = self.gallery.watchlists.enrol(watchlist_id, entries, keys=keys)
        first_of = {entry.person_id: entry for entry in reversed(entries)}
        now = int(time.time())
        self.gallery.watchlists.catalogue.record_people(
            [
                PersonRecord(
                    watchlist_id=watchlist_id,
                    person_id=person_id,
                    category=entry.category,
                    attributes=attributes.get(person_id, PersonAttributes()),
                    recorded_by=officer,
                    recorded_at=now,
                )
                for person_id, entry in sorted(first_of.items())
            ]
        )
        return enrolment

    def _attributes_record(self, recorded: Iterable[PersonAttributes]) -> dict[str, Any]:
        """What the audit entry says of recorded attributes: which were recorded, and a keyed digest of the values
        (the values themselves stay in the catalogue, and go with the person; the log is kept for ever)."""
        recorded = list(recorded)
        attributes = [each.canonical() for each in recorded]
        names = sorted({name for each in recorded for name in each.recorded()})
        if not names:
            return {}
        return {"attributes": names, "attributes_digest": self.audit.sealer.reason_digest("\n".join(attributes))}

    def _composition(self, version: WatchlistVersion) -> dict[str, Any]:
        """How many people the version holds, and how many of each category (from its entries in the gallery)."""
        frozen = {entry.entry_id for entry in self.gallery.watchlists.catalogue.version_entries(version)}
        held = [entry for entry in self.gallery.watchlists.entries(version.watchlist_id) if entry.entry_id in frozen]
        category_of = {entry.person_id: entry.category for entry in held}
        categories: dict[str, int] = {}
        for category in category_of.values():
            categories[category] = categories.get(category, 0) + 1
        return {"people": len(category_of), "categories": dict(sorted(categories.items()))}

    def _purge_expired(self, purged_at: int) -> int:
        watchlists = self.gallery.watchlists
        deleted = watchlists.purge_expired(now=purged_at)
        if deleted:
            for watchlist in watchlists.all():
                left = {entry.person_id for entry in watchlists.entries(watchlist.watchlist_id)}
                for person in watchlists.catalogue.people(watchlist.watchlist_id):
                    if person.person_id not in left:
                        watchlists.catalogue.forget_person(watchlist.watchlist_id, person.person_id)
        return deleted

    def _remove_person(self, watchlist_id: str, person_id: str) -> int:
        deleted = self.gallery.watchlists.remove_person(watchlist_id, person_id)
        self.gallery.watchlists.catalogue.forget_person(watchlist_id, person_id)
        return deleted

    def purge_expired(self, *, officer: str) -> int:
        """Delete every entry whose expiry has passed, from every watchlist; how many were deleted.

        What enrolment recorded about a person goes with their last entry.
        """
        purged_at = int(time.time())
        return audited_change(
            self.audit,
            officer,
            AuditAction.PURGE,
            "watchlist entries",
            lambda: self._purge_expired(purged_at),
            lambda deleted: {"expired_before": iso(purged_at), "entries_deleted": deleted},
            intent={"change": "purge_expired", "expired_before": iso(purged_at)},
        )

    def overview(self, *, officer: str) -> list[WatchlistOverview]:
        """Every watchlist with its entry count and versions; audited as a request."""
        watchlists = self.gallery.watchlists
        overviews = [
            WatchlistOverview(
                watchlist, watchlists.count(watchlist.watchlist_id), tuple(watchlists.versions(watchlist.watchlist_id))
            )
            for watchlist in watchlists.all()
        ]
        self.audit.record(officer, AuditAction.REQUEST, "watchlists", {"command": "watchlist list"})
        return overviews

    def detail(self, watchlist_id: str, *, officer: str) -> WatchlistDetail:
        """One watchlist with each entry (who, when, by whom) and its versions; audited as a request."""
        watchlists = self.gallery.watchlists
        watchlist = watchlists.get(watchlist_id)
        entries = tuple(watchlists.entries(watchlist_id))
        versions = tuple(watchlists.versions(watchlist_id))
        self.audit.record(
            officer,
            AuditAction.REQUEST,
            watchlist_subject(watchlist.watchlist_id),
            {"command": "watchlist show", "entries": len(entries)},
        )
        return WatchlistDetail(watchlist, entries, versions)
