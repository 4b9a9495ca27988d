"""`lfr watchlist ...`: authorised watchlists, their enrolled people and frozen versions; `lfr gallery stop`.

    lfr watchlist create NAME --authorised-by OFFICER --reason TEXT --expires 2026-12-31|+90
    lfr watchlist add NAME PERSON_ID PHOTO_OR_FOLDER... [--label --category --source --expires --face N
                      --attribute sex=female ...]
    lfr watchlist import NAME --manifest FILE.csv [--dry-run] [--report FILE.csv]
    lfr watchlist list | show NAME [--json] | freeze NAME | remove NAME PERSON_ID | purge-expired
    lfr gallery stop                       stops the embedded milvus-lite server

Each command parses its arguments, calls `cluster.application.watchlists.WatchlistService`,
which does the work and writes the audit entry, and prints what was done. The entry names who
(`--officer`; else, for `create`, `add` and `import`, the officer who authorised the watchlist;
else the operating-system user as `cli:NAME`), what and to which watchlist; never an embedding.
A change whose entry cannot be written is not made. Exit status: 0 done; 1 done, but some input
was refused (each refusal on stderr, naming the file, or for `import` the manifest's row and
column) or `remove` found no entry of the person; 2 nothing done (unknown watchlist, bad
argument, unusable manifest header, gallery or audit log unusable), or for `import`, stopped
part-way by such a failure (the rows enrolled before it stay enrolled; run it again).

`import` (see `cluster.enrolment.manifest` for the CSV and `cluster.enrolment.manifest_import` for how
rows are enrolled) writes an "import started" entry, one enrolment entry per row enrolled
(manifest and row number), and a closing entry with the counts; a dry run writes only the
closing entry. A re-run skips rows already enrolled, so it enrols only what is missing.

The helpers at the top (exit codes, `--officer`, a service over the audit log and the gallery,
progress steps, error handling) are shared with `lfr social` and `lfr retro`.
"""

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from cluster.application.watchlists import (
    DEFAULT_CATEGORY,
    ImportPlan,
    ImportTally,
    Person,
    WatchlistService,
)
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import open_audit_log
from cluster.config import LfrConfig
from cluster.enrolment.expiry import iso, parse_expiry
from cluster.enrolment.faces import ChosenFace, RefusedPhoto
from cluster.enrolment.manifest_import import ImportReport, RowOutcome, RowStatus
from cluster.gallery.attributes import describe_choices, parse_attributes
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import LiteBackendConfig
from cluster.gallery.errors import GalleryError
from cluster.gallery.gallery import Gallery
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.gallery.records import (
    LABEL_MAX,
    EnrolledEntry,
    Watchlist,
    WatchlistVersion,
    check_id,
    check_text,
)
from cluster.matching.rate import rate_argument
from cluster.vision.image_io import find_images

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_FAILED = 2
COMMAND_ERRORS = (GalleryError, AuditLogError, LookupError, ValueError, SQLAlchemyError, OSError)
"""What a gallery or audit command may fail with: each carries a message that says what to do."""


def add_officer_argument(
    parser: argparse.ArgumentParser, default: str = "the operating-system user, as cli:NAME"
) -> None:
    parser.add_argument(
        "--officer",
        default=None,
        metavar="NAME",
        help=f"Who runs this, as the audit log records it (default: {default}).",
    )


def officer_of(args: argparse.Namespace, fallback: str | None = None) -> str:
    """Who the audit entry names: --officer, else the fallback given, else `cli:<os user>`."""
    return args.officer or fallback or f"cli:{getpass.getuser()}"


def open_audit(config: LfrConfig) -> AuditLog:
    """The configured audit log; opened before anything is done, so an action never goes unrecorded."""
    return open_audit_log(config.database, config.audit)


Service = TypeVar("Service")


@contextmanager
def gallery_service(config: LfrConfig, service: Callable[[Gallery, AuditLog, LfrConfig], Service]) -> Iterator[Service]:
    """An application service over the configured audit log (opened first) and gallery; the gallery closed after."""
    audit = open_audit(config)
    with Gallery.open(config.gallery, Catalogue(audit.database)) as gallery:
        yield service(gallery, audit, config)


def one_step(progress: tqdm) -> Callable[[object], None]:
    """A callback for each item done (a frame, a post): moves the progress bar on by one."""

    def step(_: object) -> None:
        progress.update(1)

    return step


def guarded(command: Callable[[], int]) -> int:
    """Run a command; a failure it explains becomes one `lfr:` line on stderr and exit status 2."""
    try:
        return command()
    except COMMAND_ERRORS as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return EXIT_FAILED


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `watchlist` and `gallery` command groups."""
    watchlist = commands.add_parser("watchlist", help="Authorised watchlists: create, enrol, freeze, remove, purge.")
    actions = watchlist.add_subparsers(dest="watchlist_action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="Record a newly authorised watchlist.")
    create.add_argument("name", metavar="NAME", help="Watchlist id: letters, digits and . _ : - (such as west_end).")
    create.add_argument("--authorised-by", required=True, metavar="OFFICER", help="Who authorised it (name, rank).")
    create.add_argument("--reason", required=True, help="Why it is necessary and proportionate.")
    create.add_argument("--expires", required=True, metavar="WHEN", help="+DAYS, a date (UTC) or an ISO date-time.")
    add_officer_argument(create, default="the authorising officer")
    create.set_defaults(handler=run_create)

    add = actions.add_parser("add", help="Enrol photos of one person (one face per photo).")
    add.add_argument("name", metavar="NAME", help="The watchlist.")
    add.add_argument("person_id", metavar="PERSON_ID", help="The person's id: letters, digits and . _ : -.")
    add.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="Photo files or folders of photos.")
    add.add_argument("--label", default=None, help="Name shown with an alert (default: PERSON_ID).")
    add.add_argument("--category", default=DEFAULT_CATEGORY, help=f"Category id (default {DEFAULT_CATEGORY}).")
    add.add_argument("--source", default=None, help="Where the photos came from (default: each photo's path).")
    add.add_argument("--expires", default=None, metavar="WHEN", help="Entry expiry (default: the watchlist's).")
    add.add_argument(
        "--face", type=int, default=None, metavar="N", help="Enrol face N of each photo (as `lfr faces` numbers them)."
    )
    add.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Record an attribute of the person for the deployment reports' breakdown of alerts (repeatable): "
        + describe_choices()
        + ". Only as the person defined it or as recorded at custody; leave it out when not known.",
    )
    add_officer_argument(add, default="the officer who authorised the watchlist")
    add.set_defaults(handler=run_add)

    bulk = actions.add_parser("import", help="Enrol many people from a CSV manifest, one row per photo.")
    bulk.add_argument("name", metavar="NAME", help="The watchlist.")
    bulk.add_argument(
        "--manifest",
        required=True,
        type=Path,
        metavar="FILE.csv",
        help="CSV with a header: person_id,photo (required), label,category,expiry,source,face,sex,ethnicity,age_band"
        " (optional);"
        " photo paths relative to the manifest's folder, or absolute.",
    )
    bulk.add_argument("--dry-run", action="store_true", help="Check every row and find its face; enrol nothing.")
    bulk.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="Write each row's status: enrolled, skipped-already-enrolled, refused (with the column and reason),"
        " or would-enrol in a dry run.",
    )
    add_officer_argument(bulk, default="the officer who authorised the watchlist")
    bulk.set_defaults(handler=run_import)

    listing = actions.add_parser("list", help="List watchlists with their entries and versions.")
    listing.add_argument("--json", action="store_true", help="Print one JSON document instead of text.")
    add_officer_argument(listing)
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="Show a watchlist's authorisation, entries and frozen versions.")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="Print one JSON document instead of text.")
    add_officer_argument(show)
    show.set_defaults(handler=run_show)

    freeze = actions.add_parser("freeze", help="Freeze a version for deployments to bind to; prints its id.")
    freeze.add_argument("name", metavar="NAME")
    freeze.add_argument(
        "--target-fpir",
        type=rate_argument,
        default=None,
        metavar="RATE",
        help="False alerts per passer-by not on the list (default matching.target_fpir, 1/6000); the threshold is"
        " calibrated for it and the list's size.",
    )
    add_officer_argument(freeze)
    freeze.set_defaults(handler=run_freeze)

    remove = actions.add_parser("remove", help="Delete every entry of a person (from all versions).")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("person_id", metavar="PERSON_ID")
    add_officer_argument(remove)
    remove.set_defaults(handler=run_remove)

    purge = actions.add_parser("purge-expired", help="Delete every entry whose expiry has passed.")
    add_officer_argument(purge)
    purge.set_defaults(handler=run_purge_expired)

    gallery = commands.add_parser("gallery", help="The face gallery's embedded server.")
    gallery_actions = gallery.add_subparsers(dest="gallery_action", required=True, metavar="ACTION")
    stop = gallery_actions.add_parser("stop", help="Stop the embedded milvus-lite server (it restarts on next use).")
    stop.set_defaults(handler=run_gallery_stop)


def run_create(args: argparse.Namespace, config: LfrConfig) -> int:
    def create() -> int:
        expires_at = parse_expiry(args.expires)
        with gallery_service(config, WatchlistService) as service:
            watchlist = service.create(
                args.name,
                name=args.name,
                reason=args.reason,
                authorised_by=args.authorised_by,
                expires_at=expires_at,
                officer=officer_of(args, args.authorised_by),
            )
        sys.stdout.write(
            f"created watchlist {watchlist.watchlist_id}, authorised by {watchlist.authorised_by},"
            f" expires {iso(watchlist.expires_at)}\n"
        )
        return EXIT_OK

    return guarded(create)


def run_add(args: argparse.Namespace, config: LfrConfig) -> int:
    def add() -> int:
        expires_at = parse_expiry(args.expires) if args.expires is not None else None
        if args.face is not None and args.face < 0:
            raise ValueError(f"--face must be 0 or more (as `lfr faces` numbers faces), got {args.face}")
        check_id(args.person_id, "PERSON_ID")
        check_id(args.category, "--category")
        check_text(args.label or args.person_id, "--label", LABEL_MAX)
        try:
            attributes = parse_attributes(args.attribute)
        except ValueError as exc:
            raise ValueError(f"--attribute: {exc}") from None
        photos = find_images(args.photos)
        if not photos:
            raise ValueError(f"no photos found in {', '.join(str(p) for p in args.photos)}; pass JPEG or PNG files")
        person = Person(
            args.person_id,
            args.label or args.person_id,
            args.category,
            source=args.source,
            expires_at=expires_at,
            attributes=attributes,
        )
        with (
            gallery_service(config, WatchlistService) as service,
            tqdm(total=len(photos), unit="photo", file=sys.stderr, disable=None) as progress,
        ):

            def shown(result: ChosenFace | RefusedPhoto) -> None:
                progress.update(1)
                if isinstance(result, RefusedPhoto):
                    progress.write(f"lfr: refused {result.reason}", file=sys.stderr)

            added = service.add_photos(
                args.name, photos, person, officer=args.officer, face_index=args.face, on_photo=shown
            )
        watchlist, enrolment, entries, refused = added.watchlist, added.enrolment, added.chosen, added.refused
        if enrolment is None:
            sys.stderr.write(f"lfr: nothing enrolled: every photo of {args.person_id} was refused\n")
            return EXIT_REFUSED
        sys.stdout.write(
            f"enrolled {len(entries)} photo{'s' if len(entries) != 1 else ''} of {args.person_id} into"
            f" {watchlist.watchlist_id} (batch {enrolment.batch}); run `lfr watchlist freeze"
            f" {watchlist.watchlist_id}` for deployments to search them\n"
        )
        if refused:
            sys.stderr.write(f"lfr: {len(refused)} of {len(photos)} photos refused (see above)\n")
            return EXIT_REFUSED
        return EXIT_OK

    return guarded(add)


def run_import(args: argparse.Namespace, config: LfrConfig) -> int:
    def bulk() -> int:
        manifest: Path = args.manifest.absolute()
        if args.report is not None and args.report.absolute() == manifest:
            raise ValueError(f"--report {args.report} is the manifest itself; name another file for the report")
        with gallery_service(config, WatchlistService) as service:
            plan = service.plan_import(args.name, manifest, officer=args.officer, dry_run=args.dry_run)
            report = ImportReport(args.report) if args.report is not None else None
            try:
                return _import_rows(service, plan, report)
            finally:
                if report is not None:
                    report.close()

    return guarded(bulk)


def _import_rows(service: WatchlistService, plan: ImportPlan, report: ImportReport | None) -> int:
    """Run the import with a progress bar, each refusal on stderr and each row in the report; print the counts."""
    target, rows = plan.target, len(plan.rows)
    tally = ImportTally(rows)
    with tqdm(total=rows, unit="row", file=sys.stderr, disable=None) as progress:

        def shown(outcome: RowOutcome) -> None:
            if outcome.status is RowStatus.REFUSED:
                progress.write(f"lfr: refused {outcome.describe()}", file=sys.stderr)
            if report is not None:
                report.add(outcome)

        def decided(count: int) -> None:
            progress.update(count)

        try:
            service.run_import(plan, tally, on_row=shown, progress=decided)
        except BaseException:
            progress.write(
                f"lfr: import stopped after {tally.done} of {rows} rows ({tally.counts[RowStatus.ENROLLED]} enrolled);"
                " run the same manifest again to enrol the rest",
                file=sys.stderr,
            )
            raise
    counts = tally.counts
    tail = f"{counts[RowStatus.SKIPPED]} already enrolled, {counts[RowStatus.REFUSED]} refused"
    if plan.dry_run:
        sys.stdout.write(
            f"dry run: {counts[RowStatus.WOULD_ENROL]} of {rows} rows would be enrolled into"
            f" {target.watchlist_id}; {tail}; nothing was written to the gallery\n"
        )
    else:
        batches = len(tally.batches)
        sys.stdout.write(
            f"enrolled {counts[RowStatus.ENROLLED]} of {rows} rows into {target.watchlist_id}"
            f" ({batches} batch{'es' if batches != 1 else ''}); {tail}; run `lfr watchlist freeze"
            f" {target.watchlist_id}` for deployments to search them\n"
        )
    if report is not None:
        sys.stderr.write(f"lfr: each row's status is in {report.path}\n")
    if tally.refused_rows:
        sys.stderr.write(f"lfr: {len(tally.refused_rows)} of {rows} rows refused (see above)\n")
        return EXIT_REFUSED
    return EXIT_OK


def _watchlist_record(watchlist: Watchlist, entries: int, versions: Sequence[WatchlistVersion]) -> dict[str, Any]:
    return {
        "watchlist_id": watchlist.watchlist_id,
        "authorised_by": watchlist.authorised_by,
        "reason": watchlist.reason,
        "created_at": iso(watchlist.created_at),
        "expires_at": iso(watchlist.expires_at),
        "expired": watchlist.expires_at <= time.time(),
        "entries": entries,
        "versions": [_version_record(version) for version in versions],
    }


def _version_record(version: WatchlistVersion) -> dict[str, Any]:
    return {
        "version": version.version_id,
        "entries": version.entry_count,
        "digest": version.digest,
        "frozen_at": iso(version.frozen_at),
        "calibration": version.calibration.record() if version.calibration else None,
    }


def _entry_record(entry: EnrolledEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "person_id": entry.person_id,
        "label": entry.label,
        "category": entry.category,
        "source": entry.source,
        "authorised_by": entry.authorised_by,
        "enrolled_at": iso(entry.enrolled_at),
        "expires_at": iso(entry.expires_at),
        "batch": entry.batch,
    }


def run_list(args: argparse.Namespace, config: LfrConfig) -> int:
    def listing() -> int:
        with gallery_service(config, WatchlistService) as service:
            overviews = service.overview(officer=officer_of(args))
        records = [_watchlist_record(o.watchlist, o.entry_count, o.versions) for o in overviews]
        if args.json:
            sys.stdout.write(json.dumps({"watchlists": records}, indent=2) + "\n")
            return EXIT_OK
        if not records:
            sys.stdout.write("no watchlists yet; create one with `lfr watchlist create`\n")
        for record in records:
            latest = record["versions"][-1]["version"] if record["versions"] else "not frozen"
            state = "EXPIRED" if record["expired"] else f"expires {record['expires_at']}"
            sys.stdout.write(
                f"{record['watchlist_id']}: {record['entries']} entries, latest version {latest}, {state},"
                f" authorised by {record['authorised_by']}\n"
            )
        return EXIT_OK

    return guarded(listing)


def run_show(args: argparse.Namespace, config: LfrConfig) -> int:
    def show() -> int:
        with gallery_service(config, WatchlistService) as service:
            detail = service.detail(args.name, officer=officer_of(args))
        watchlist, entries, versions = detail.watchlist, detail.entries, detail.versions
        record = _watchlist_record(watchlist, len(entries), versions)
        record["entries"] = [_entry_record(entry) for entry in entries]
        if args.json:
            sys.stdout.write(json.dumps(record, indent=2) + "\n")
            return EXIT_OK
        lines = [
            f"watchlist {watchlist.watchlist_id}",
            f"  authorised by {watchlist.authorised_by} on {record['created_at']}: {watchlist.reason}",
            f"  {'EXPIRED' if record['expired'] else 'expires'} {record['expires_at']}",
            f"  entries ({len(entries)}):",
            *(
                f"    {e['person_id']} ({e['label']}, {e['category']}) batch {e['batch']}, enrolled {e['enrolled_at']}"
                f" by {e['authorised_by']}, expires {e['expires_at']}, source {e['source']}"
                for e in record["entries"]
            ),
            f"  versions ({len(versions)}):",
            *(
                f"    {v['version']}: {v['entries']} entries, frozen {v['frozen_at']}, digest {v['digest'][:16]}"
                for v in record["versions"]
            ),
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        return EXIT_OK

    return guarded(show)


def run_freeze(args: argparse.Namespace, config: LfrConfig) -> int:
    def freeze() -> int:
        with gallery_service(config, WatchlistService) as service:
            version = service.freeze(args.name, target_fpir=args.target_fpir, officer=officer_of(args))
        calibration = version.calibration
        sys.stdout.write(f"{version.version_id}\n")
        sys.stderr.write(
            f"{version.version_id}: {version.entry_count} entries, digest {version.digest};"
            f" {calibration.summary() if calibration else 'no entries, no threshold'};"
            " bind a deployment to it with deployment.watchlist_version\n"
        )
        return EXIT_OK

    return guarded(freeze)


def run_remove(args: argparse.Namespace, config: LfrConfig) -> int:
    def remove() -> int:
        with gallery_service(config, WatchlistService) as service:
            deleted = service.remove_person(args.name, args.person_id, officer=officer_of(args))
        entries = "entry" if deleted == 1 else "entries"
        sys.stdout.write(f"removed {deleted} {entries} of {args.person_id} from {args.name}\n")
        if deleted == 0:
            sys.stderr.write(
                f"lfr: {args.name} holds no entry of {args.person_id!r};"
                f" check the id with `lfr watchlist show {args.name}`\n"
            )
            return EXIT_REFUSED
        return EXIT_OK

    return guarded(remove)


def run_purge_expired(args: argparse.Namespace, config: LfrConfig) -> int:
    def purge() -> int:
        with gallery_service(config, WatchlistService) as service:
            deleted = service.purge_expired(officer=officer_of(args))
        sys.stdout.write(f"purged {deleted} expired entr{'y' if deleted == 1 else 'ies'}\n")
        return EXIT_OK

    return guarded(purge)


def run_gallery_stop(args: argparse.Namespace, config: LfrConfig) -> int:
    backend = config.gallery.backend
    if not isinstance(backend, LiteBackendConfig):
        sys.stderr.write(f"lfr: the gallery is the Milvus server at {backend.uri}; stop it where it runs\n")
        return EXIT_FAILED

    def stop() -> int:
        embedded = EmbeddedMilvus(backend, config.gallery.timeouts)
        if embedded.stop():
            sys.stdout.write(f"stopped the embedded milvus-lite server of {embedded.data_dir}\n")
        else:
            sys.stdout.write(f"no embedded milvus-lite server was running for {embedded.data_dir}\n")
        return EXIT_OK

    return guarded(stop)
