"""Bulk-enrolment manifests: a CSV saying, row by row, whom to enrol from which photo.

The format (UTF-8, a byte-order mark allowed, as spreadsheets save "CSV UTF-8"):

    person_id,photo,label,category,expiry,source,face,sex,ethnicity,age_band
    A1234,photos/a1234.jpg,Alex Example,wanted,+30,custody 2025-03-01,,male,white,25_34
    B5678,/evidence/b5678.png,,missing,,,1,,,

`person_id` and `photo` are required; the other columns are optional, in any order, and an
empty value takes its default: `label` the person id, `category` the caller's default,
`expiry` the watchlist's, `source` the photo's path, `face` none (the photo must then show
exactly one face; `face` N picks face N as `lfr faces` numbers them, as `--face` does for
`lfr watchlist add`). A relative photo path is taken from the manifest's folder. `expiry`
is written as `--expires` takes it (+DAYS, a date or a date-time). `sex`, `ethnicity` and
`age_band` record what is known of the person for deployment reports (`cluster.gallery.attributes`
lists the values), as `--attribute` does; empty: not recorded.

A header that cannot be used (unknown, missing or repeated columns, an empty file) refuses the
whole manifest with `ManifestError`: nothing could be imported from it safely. A bad row is
refused on its own, as a `RowRefusal` naming its row number (the header is row 1, as a
spreadsheet numbers them) and the column at fault, and never stops the others.

Each good row is keyed by (person id, SHA-256 of the photo's bytes, face index); a row whose
key repeats an earlier row's is refused, so one manifest never enrols the same face twice. A
row without `face` is keyed as face 0: it can only ever be enrolled when its photo shows one
face, which is then face 0.
"""

import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.enrolment.expiry import iso, parse_expiry
from cluster.gallery.attributes import ATTRIBUTE_VALUES, PersonAttributes, attributes_from
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.errors import InvalidRecordError
from cluster.gallery.records import LABEL_MAX, SOURCE_MAX, check_id, check_text

REQUIRED_COLUMNS = ("person_id", "photo")
OPTIONAL_COLUMNS = ("label", "category", "expiry", "source", "face", *ATTRIBUTE_VALUES)
HEADER_ROW = 1


class ManifestError(ValueError):
    """The manifest as a whole cannot be read; the message names the file and what to fix."""


class RowError(ValueError):
    """One column of one row is bad (raised and caught while a row is read)."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class ManifestRow:
    """A row that passed every check that needs no face detection; `photo` is an absolute path."""

    number: int
    person_id: str
    photo: Path
    photo_sha256: str
    face: int | None
    label: str
    category: str
    source: str
    expires_at: int | None
    attributes: PersonAttributes = PersonAttributes()

    @property
    def key(self) -> EnrolmentKey:
        """What this row enrols: a re-run skips a row whose key the watchlist already holds."""
        return EnrolmentKey(self.person_id, self.photo_sha256, 0 if self.face is None else self.face)


@dataclass(frozen=True)
class RowRefusal:
    """A row refused before any face detection; person_id and photo as written in the file."""

    number: int
    column: str
    reason: str
    person_id: str
    photo: str

    def describe(self) -> str:
        return row_message(self.number, self.column, self.reason)


def row_message(number: int, column: str, reason: str) -> str:
    """'row 7, photo: no file ...'; a problem with the row as a whole names no column."""
    return f"row {number}{f', {column}' if column else ''}: {reason}"


def read_manifest(
    path: Path, *, watchlist_expires_at: int, default_category: str, now: float | None = None
) -> list[ManifestRow | RowRefusal]:
    """Every data row of the manifest in file order, each read and checked or refused with its reason.

    Photos are read to hash them (a missing or unreadable file is refused here), not decoded.
    An expiry must be after `now` and no later than the watchlist's own. ManifestError when the
    file or its header cannot be used.
    """
    current = time.time() if now is None else now
    records = _records(path)
    try:
        header = next(records)
    except StopIteration:
        raise ManifestError(f"{path}: the manifest is empty; its first line names the columns") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}, row {HEADER_ROW}: {exc}") from exc
    columns = _columns(path, header)
    folder = path.absolute().parent
    read: list[ManifestRow | RowRefusal] = []
    first_of_key: dict[EnrolmentKey, int] = {}
    number = HEADER_ROW
    while True:
        try:
            values = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ManifestError(f"{path}, row {number + 1}: {exc}; fix the quoting and run again") from exc
        number += 1
        if not any(value.strip() for value in values):
            continue
        fields = dict(zip(columns, (value.strip() for value in values)))
        try:
            if len(values) != len(columns):
                raise RowError("", f"{len(values)} values, but the header names {len(columns)} columns")
            row = _row(number, fields, folder, watchlist_expires_at, default_category, current)
            first = first_of_key.setdefault(row.key, number)
            if first != number:
                raise RowError(
                    "photo", f"repeats row {first}: the same person, photo (same bytes) and face; remove one of them"
                )
        except RowError as error:
            read.append(
                RowRefusal(number, error.column, error.reason, fields.get("person_id", ""), fields.get("photo", ""))
            )
            continue
        read.append(row)
    if not read:
        raise ManifestError(f"{path}: the manifest has a header but no rows; add one row per photo to enrol")
    return read


def _records(path: Path) -> Iterator[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest; check the path") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the manifest as CSV UTF-8 and run again"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror})") from exc
    return csv.reader(io.StringIO(text, newline=""), strict=True)


def _columns(path: Path, header: Sequence[str]) -> tuple[str, ...]:
    """The header's column names (trimmed, lower case); ManifestError when they cannot be used."""
    columns = tuple(name.strip().lower() for name in header)
    known = f"the columns are {', '.join(REQUIRED_COLUMNS)} (required) and {', '.join(OPTIONAL_COLUMNS)} (optional)"
    unknown = [name for name in columns if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise ManifestError(f"{path}: unknown column{'s' if len(unknown) > 1 else ''} {names} in the header; {known}")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ManifestError(f"{path}: column {', '.join(repeated)} named more than once in the header; {known}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ManifestError(f"{path}: the header lacks {', '.join(missing)}; {known}")
    return columns


def _row(
    number: int, fields: dict[str, str], folder: Path, watchlist_expires_at: int, default_category: str, now: float
) -> ManifestRow:
    person_id = _checked("person_id", lambda: check_id(fields["person_id"], "person_id"))
    photo = _photo(fields["photo"], folder)
    face = _face(fields.get("face", ""))
    label = _checked("label", lambda: check_text(fields.get("label") or person_id, "label", LABEL_MAX))
    category = _checked("category", lambda: check_id(fields.get("category") or default_category, "category"))
    source = _checked("source", lambda: check_text(fields.get("source") or str(photo), "source", SOURCE_MAX))
    expires_at = _expiry(fields.get("expiry", ""), watchlist_expires_at, now)
    attributes = _attributes(fields)
    return ManifestRow(
        number=number,
        person_id=person_id,
        photo=photo,
        photo_sha256=_sha256(photo),
        face=face,
        label=label,
        category=category,
        source=source,
        expires_at=expires_at,
        attributes=attributes,
    )


def _attributes(fields: dict[str, str]) -> PersonAttributes:
    """The row's recorded attributes (empty columns: not recorded); RowError naming the first bad column."""
    given = {name: fields[name] for name in ATTRIBUTE_VALUES if fields.get(name)}
    for name, value in given.items():
        try:
            attributes_from({name: value})
        except ValueError as exc:
            raise RowError(name, str(exc).split(";")[0]) from None
    return attributes_from(given)


def _checked(column: str, check: Callable[[], str]) -> str:
    """The checked value, or RowError naming the column with the check's own message."""
    try:
        return check()
    except InvalidRecordError as exc:
        raise RowError(column, str(exc)) from None


def _photo(text: str, folder: Path) -> Path:
    if not text:
        raise RowError("photo", "empty; name the photo file (relative to the manifest's folder, or absolute)")
    written = Path(text).expanduser()
    photo = written if written.is_absolute() else folder / written
    if photo.is_dir():
        raise RowError("photo", f"{photo} is a folder; name one photo file per row")
    if not photo.is_file():
        relative = "" if written.is_absolute() else f" (a relative path is taken from the manifest's folder {folder})"
        raise RowError("photo", f"no file {photo}{relative}")
    return photo


def _sha256(photo: Path) -> str:
    try:
        with photo.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError as exc:
        raise RowError("photo", f"cannot read {photo} ({exc.strerror})") from None


def _face(text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise RowError("face", f"{text!r} is not a face index; give 0 or more, as `lfr faces PHOTO` numbers them")
    return int(text)


def _expiry(text: str, watchlist_expires_at: int, now: float) -> int | None:
    if not text:
        return None
    try:
        expires_at = parse_expiry(text, now=now, what="expiry")
    except ValueError as exc:
        raise RowError("expiry", str(exc)) from None
    if expires_at <= now:
        raise RowError("expiry", f"{text!r} has already passed; give a later expiry")
    if expires_at > watchlist_expires_at:
        raise RowError(
            "expiry",
            f"{text!r} is after the watchlist's own expiry ({iso(watchlist_expires_at)}); no entry may outlive"
            " its authorisation: leave it empty for the watchlist's",
        )
    return expires_at
