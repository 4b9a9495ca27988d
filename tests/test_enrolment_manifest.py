"""Reading and checking bulk-enrolment manifests (`cluster.enrolment.manifest`), without a gallery or a model.

Photos here are only hashed, never decoded, so any bytes will do; face detection and the
gallery are covered by tests/test_watchlist_import.py.
"""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cluster.enrolment.manifest import ManifestError, ManifestRow, RowRefusal, read_manifest
from cluster.gallery.enrolment_keys import EnrolmentKey

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
WATCHLIST_EXPIRES = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())


def write(folder: Path, text: str, name: str = "manifest.csv", encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_text(text, encoding=encoding)
    return path


def read(path: Path) -> list[ManifestRow | RowRefusal]:
    return read_manifest(path, watchlist_expires_at=WATCHLIST_EXPIRES, default_category="wanted", now=NOW)


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder beside the manifest with two distinct 'photos' (a.jpg, b.jpg) and a sub-folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"photo a")
    (folder / "b.jpg").write_bytes(b"photo b")
    (folder / "nested").mkdir()
    return folder


def test_a_good_row_takes_defaults_and_resolves_relative_and_absolute_paths(tmp_path, photos):
    manifest = write(
        tmp_path,
        "person_id,photo,label,category,expiry,source,face\n"
        "A1234,photos/a.jpg,,,,,\n"
        f"B-5678,{photos / 'b.jpg'},Bea Example,missing,2026-04-30,custody 2025,1\n",
    )
    first, second = read(manifest)
    assert first == ManifestRow(
        number=2,
        person_id="A1234",
        photo=photos / "a.jpg",
        photo_sha256=hashlib.sha256(b"photo a").hexdigest(),
        face=None,
        label="A1234",
        category="wanted",
        source=str(photos / "a.jpg"),
        expires_at=None,
    )
    assert first.key == EnrolmentKey("A1234", hashlib.sha256(b"photo a").hexdigest(), 0)
    assert (second.photo, second.label, second.category, second.source, second.face) == (
        photos / "b.jpg",
        "Bea Example",
        "missing",
        "custody 2025",
        1,
    )
    assert second.expires_at == int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
    assert second.key.face_index == 1


def test_header_may_be_in_any_order_case_and_spacing_and_carry_a_bom(tmp_path, photos):
    manifest = write(tmp_path, " Photo , PERSON_ID\r\nphotos/a.jpg,A1\r\n", encoding="utf-8-sig")
    (row,) = read(manifest)
    assert (row.number, row.person_id, row.photo) == (2, "A1", photos / "a.jpg")


def test_blank_lines_are_skipped_but_keep_their_row_numbers(tmp_path, photos):
    manifest = write(tmp_path, "person_id,photo\n\nA1,photos/a.jpg\n,\nB2,photos/b.jpg\n")
    assert [(row.number, row.person_id) for row in read(manifest)] == [(3, "A1"), (5, "B2")]


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("bad id,photos/a.jpg,,", "person_id", "person_id must be 1-64 characters"),
        (",photos/a.jpg,,", "person_id", "got ''"),
        ("A1,,,", "photo", "empty; name the photo file"),
        ("A1,photos/missing.jpg,,", "photo", "no file {photos}/missing.jpg (a relative path is taken from"),
        ("A1,{photos}/missing.jpg,,", "photo", "no file {photos}/missing.jpg"),
        ("A1,photos/nested,,", "photo", "is a folder; name one photo file per row"),
        ("A1,photos/a.jpg,soon,", "expiry", "expiry 'soon': pass +DAYS"),
        ("A1,photos/a.jpg,+0,", "expiry", "+DAYS must be a positive number"),
        ("A1,photos/a.jpg,2026-01-01,", "expiry", "'2026-01-01' has already passed"),
        ("A1,photos/a.jpg,2026-07-01,", "expiry", "is after the watchlist's own expiry (2026-06-01T00:00:00+00:00)"),
        ("A1,photos/a.jpg,+365,", "expiry", "no entry may outlive its authorisation"),
        ("A1,photos/a.jpg,,-1", "face", "'-1' is not a face index"),
        ("A1,photos/a.jpg,,first", "face", "'first' is not a face index"),
        ("A1,photos/a.jpg,,,extra", "", "5 values, but the header names 4 columns"),
        ("A1,photos/a.jpg", "", "2 values, but the header names 4 columns"),
    ],
)
def test_a_bad_row_is_refused_with_its_row_and_column_and_the_others_are_read(tmp_path, photos, line, column, message):
    bad = line.format(photos=photos)
    manifest = write(tmp_path, f"person_id,photo,expiry,face\nOK1,photos/a.jpg,,\n{bad}\nOK2,photos/b.jpg,,\n")
    first, refusal, last = read(manifest)
    assert (first.person_id, last.person_id) == ("OK1", "OK2")
    assert isinstance(refusal, RowRefusal)
    assert (refusal.number, refusal.column) == (3, column)
    assert message.format(photos=photos) in refusal.reason
    assert refusal.describe().startswith(f"row 3{', ' + column if column else ''}: ")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("label", "x" * 257, "label is 257 bytes of UTF-8; at most 256"),
        ("category", "not a category", "category must be 1-64 characters"),
        ("source", "s" * 513, "source is 513 bytes of UTF-8; at most 512"),
    ],
)
def test_label_category_and_source_are_checked_as_the_gallery_stores_them(tmp_path, photos, column, value, message):
    manifest = write(tmp_path, f"person_id,photo,{column}\nA1,photos/a.jpg,{value}\n")
    (refusal,) = read(manifest)
    assert isinstance(refusal, RowRefusal) and refusal.column == column and message in refusal.reason


def test_a_row_repeating_an_earlier_rows_person_photo_and_face_is_refused(tmp_path, photos):
    """Same bytes under another name are the same photo; face left empty means face 0."""
    (photos / "copy_of_a.jpg").write_bytes(b"photo a")
    manifest = write(
        tmp_path,
        "person_id,photo,face\nA1,photos/a.jpg,\nA1,photos/copy_of_a.jpg,0\nA1,photos/a.jpg,1\nB2,photos/a.jpg,\n",
    )
    first, repeat, other_face, other_person = read(manifest)
    assert isinstance(repeat, RowRefusal)
    assert (repeat.number, repeat.column) == (3, "photo") and "repeats row 2" in repeat.reason
    assert all(isinstance(row, ManifestRow) for row in (first, other_face, other_person))


@pytest.mark.parametrize(
    ("text", "message", "lists_columns"),
    [
        ("person_id,photo,nickname,dob\nA1,a.jpg,x,y\n", "unknown columns 'nickname', 'dob' in the header", True),
        ("person_id,picture\nA1,a.jpg\n", "unknown column 'picture' in the header", True),
        ("person_id,label\nA1,x\n", "the header lacks photo", True),
        ("person_id,photo,photo\nA1,a.jpg,b.jpg\n", "column photo named more than once", True),
        ("", "the manifest is empty", False),
        ("person_id,photo\n", "has a header but no rows", False),
        ("person_id,photo\n\n\n", "has a header but no rows", False),
        ('person_id,photo\nA1,"a.jpg\n', "row 2: unexpected end of data", False),
    ],
)
def test_a_manifest_whose_header_or_file_cannot_be_used_is_refused_whole(tmp_path, text, message, lists_columns):
    manifest = write(tmp_path, text)
    with pytest.raises(ManifestError) as caught:
        read(manifest)
    error = str(caught.value)
    assert error.startswith(str(manifest)) and message in error
    known = (
        "the columns are person_id, photo (required) and label, category, expiry, source, face, sex, ethnicity,"
        " age_band (optional)"
    )
    assert (known in error) == lists_columns


def test_a_manifest_that_is_not_utf8_or_not_there_is_refused(tmp_path):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("person_id,photo\nA1,café.jpg\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8 text .* save the manifest as CSV UTF-8"):
        read(latin)
    with pytest.raises(ManifestError, match="no such manifest"):
        read(tmp_path / "absent.csv")


def test_attribute_columns_are_recorded_when_given_and_a_bad_value_refuses_its_row(tmp_path, photos):
    manifest = write(
        tmp_path,
        "person_id,photo,sex,ethnicity,age_band\n"
        "A1,photos/a.jpg,female,black,\n"
        "B2,photos/b.jpg,,,\n"
        "C3,photos/a.jpg,,martian,\n",
    )
    first, second, third = read(manifest)
    assert isinstance(first, ManifestRow) and first.attributes.recorded() == {"sex": "female", "ethnicity": "black"}
    assert isinstance(second, ManifestRow) and second.attributes.recorded() == {}
    assert isinstance(third, RowRefusal) and third.column == "ethnicity"
    assert third.describe() == "row 4, ethnicity: ethnicity 'martian' is not one of asian, black, mixed, white, other"
