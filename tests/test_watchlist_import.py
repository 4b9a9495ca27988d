"""`lfr watchlist import` on a real milvus-lite gallery, real faces (lfw10, face_recognition) and a real audit log.

Every test authorises its own watchlist in the module's gallery (`lite_lfr_config`, as
tests/test_watchlist_cli.py uses it), writes a manifest under its own tmp_path and runs the
command in this process through `lfr`.
"""

import csv
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from cluster.application.watchlists import number_ranges
from cluster.audit.actions import AuditAction
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.enrolment import manifest_import as watchlist_import
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.catalogue_tables import batches
from cluster.vision.image_io import load_image
from tests.paths import FACE_RECOGNITION
from tests.records import opened_gallery
from tests.test_watchlist_cli import (
    THRESHOLD,
    Ran,
    audit_entries,
    audit_head,
    create,
    holds_no_vector,
    lfr,
    lite_lfr_config,
    photo,
    street_frame,
)

pytestmark = pytest.mark.slow

HEADER = ("person_id", "photo", "label", "category", "expiry", "source")
OFFICER = "Supt. A. Example"


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr-import")) as config:
        yield config


def write_manifest(path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER) -> Path:
    """A CSV manifest; a row shorter than the header is padded with empty values."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([*map(str, row), *[""] * (len(header) - len(row))] for row in rows)
    return path


def import_manifest(config: LfrConfig, name: str, manifest: Path, *extra: object) -> Ran:
    return lfr(config, "watchlist", "import", name, "--manifest", manifest, *extra)


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def statuses(path: Path) -> list[tuple[int, str]]:
    return [(int(row["row"]), row["status"]) for row in report_rows(path)]


def stored(config: LfrConfig, name: str) -> list[tuple[str, str, str, str]]:
    """(person_id, label, category, source) of each entry stored for the watchlist, sorted."""
    with opened_gallery(config) as gallery:
        return sorted((e.person_id, e.label, e.category, e.source) for e in gallery.watchlists.entries(name))


def batches_written(config: LfrConfig, name: str) -> int:
    with Database(config.database.url) as database, database.reading() as db:
        query = sa.select(sa.func.count()).select_from(batches).where(batches.c.watchlist_id == name)
        return db.execute(query).scalar_one()


def test_import_enrols_every_row_from_relative_and_absolute_paths_and_audits_each_row(
    lfr_config, tmp_path, face_pipeline
):
    create(lfr_config, "bulk")
    (tmp_path / "photos").mkdir()
    relative = shutil.copy(photo("George_W_Bush", 1), tmp_path / "photos" / "gwb.jpg")
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            ("George_W_Bush", "photos/gwb.jpg", "George W Bush"),
            ("Colin_Powell", photo("Colin_Powell", 1), "", "missing", "+7"),
            ("Hugo_Chavez", photo("Hugo_Chavez", 1), "", "", "", "custody image"),
        ],
    )
    start = audit_head(lfr_config)

    ran = import_manifest(lfr_config, "bulk", manifest, "--report", tmp_path / "report.csv")

    assert ran.code == 0, ran.err
    assert "enrolled 3 of 3 rows into bulk (1 batch); 0 already enrolled, 0 refused" in ran.out
    assert stored(lfr_config, "bulk") == [
        ("Colin_Powell", "Colin_Powell", "missing", str(photo("Colin_Powell", 1))),
        ("George_W_Bush", "George W Bush", "wanted", str(relative)),
        ("Hugo_Chavez", "Hugo_Chavez", "wanted", "custody image"),
    ]
    report = report_rows(tmp_path / "report.csv")
    assert [(r["row"], r["status"], r["person_id"], r["photo"]) for r in report] == [
        ("2", "enrolled", "George_W_Bush", str(relative)),
        ("3", "enrolled", "Colin_Powell", str(photo("Colin_Powell", 1))),
        ("4", "enrolled", "Hugo_Chavez", str(photo("Hugo_Chavez", 1))),
    ]

    started, *_ = audit_entries(lfr_config, start, intents=True)
    assert (started.details["stage"], started.details["phase"]) == ("started", "intent")
    entries = [started, *audit_entries(lfr_config, start)]
    assert [
        (e.action, e.details["stage"] if e.action == AuditAction.REQUEST else e.details["row"]) for e in entries
    ] == [
        (AuditAction.REQUEST, "started"),
        (AuditAction.ENROLMENT, 2),
        (AuditAction.ENROLMENT, 3),
        (AuditAction.ENROLMENT, 4),
        (AuditAction.REQUEST, "finished"),
    ]
    enrolments = entries[1:4]
    assert all(e.actor == OFFICER and e.subject == "watchlist:bulk" for e in entries)
    assert all(e.details["manifest"] == str(manifest) for e in entries)
    assert [e.details["entry_id"] for e in enrolments] == [r["entry_id"] for r in report]
    assert enrolments[0].details["photo"] == str(relative) and enrolments[0].details["face_index"] == 0
    assert enrolments[1].details["expires_at"] is not None and enrolments[0].details["expires_at"] is None
    assert entries[-1].details["enrolled"] == 3 and entries[-1].details["refused_rows"] == ""
    assert all(holds_no_vector(dict(e.details)) for e in entries)

    (probe,) = face_pipeline.process([load_image(photo("George_W_Bush", 2))])
    with opened_gallery(lfr_config) as gallery:
        (candidates,) = gallery.watchlists.search(probe[0].embedding[np.newaxis], gallery.watchlists.freeze("bulk"))
    assert candidates[0].entry.person_id == "George_W_Bush" and candidates[0].similarity >= THRESHOLD


def test_a_rerun_enrols_nothing_and_a_renamed_copy_of_a_photo_is_still_the_same_photo(lfr_config, tmp_path):
    create(lfr_config, "rerun")
    rows = [("Tony_Blair", photo("Tony_Blair", 1)), ("Donald_Rumsfeld", photo("Donald_Rumsfeld", 1))]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    first = import_manifest(lfr_config, "rerun", manifest, "--report", tmp_path / "first.csv")
    assert first.code == 0, first.err
    before = stored(lfr_config, "rerun")
    start = audit_head(lfr_config)

    again = import_manifest(lfr_config, "rerun", manifest, "--report", tmp_path / "again.csv")

    assert again.code == 0, again.err
    assert "enrolled 0 of 2 rows into rerun (0 batches); 2 already enrolled, 0 refused" in again.out
    assert statuses(tmp_path / "again.csv") == [(2, "skipped-already-enrolled"), (3, "skipped-already-enrolled")]
    skipped_ids = [r["entry_id"] for r in report_rows(tmp_path / "again.csv")]
    assert skipped_ids == [r["entry_id"] for r in report_rows(tmp_path / "first.csv")]
    assert stored(lfr_config, "rerun") == before and batches_written(lfr_config, "rerun") == 1
    assert [e.details["stage"] for e in audit_entries(lfr_config, start, intents=True)] == ["started", "finished"]

    renamed = shutil.copy(photo("Tony_Blair", 1), tmp_path / "blair_renamed.jpg")
    copied = write_manifest(tmp_path / "copied.csv", [("Tony_Blair", renamed)])
    ran = import_manifest(lfr_config, "rerun", copied, "--report", tmp_path / "copied_report.csv")
    assert ran.code == 0 and statuses(tmp_path / "copied_report.csv") == [(2, "skipped-already-enrolled")]


def test_a_partial_manifest_then_the_full_one_enrols_only_the_difference(lfr_config, tmp_path):
    create(lfr_config, "partial")
    rows = [
        ("Gerhard_Schroeder", photo("Gerhard_Schroeder", 1)),
        ("Jacques_Chirac", photo("Jacques_Chirac", 1)),
        ("Vladimir_Putin", photo("Vladimir_Putin", 1)),
        ("Gerhard_Schroeder", photo("Gerhard_Schroeder", 2)),
    ]
    partial = import_manifest(lfr_config, "partial", write_manifest(tmp_path / "part.csv", rows[:2]))
    assert partial.code == 0, partial.err

    full = import_manifest(
        lfr_config, "partial", write_manifest(tmp_path / "full.csv", rows), "--report", tmp_path / "r.csv"
    )

    assert full.code == 0, full.err
    assert "enrolled 2 of 4 rows into partial (1 batch); 2 already enrolled, 0 refused" in full.out
    assert statuses(tmp_path / "r.csv") == [
        (2, "skipped-already-enrolled"),
        (3, "skipped-already-enrolled"),
        (4, "enrolled"),
        (5, "enrolled"),
    ]
    people = [person for person, *_ in stored(lfr_config, "partial")]
    assert people == ["Gerhard_Schroeder", "Gerhard_Schroeder", "Jacques_Chirac", "Vladimir_Putin"]


def test_a_dry_run_detects_faces_and_reports_but_writes_nothing_to_the_gallery(lfr_config, tmp_path):
    create(lfr_config, "dry")
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            ("Colin_Powell", photo("Colin_Powell", 2)),
            ("Ariel_Sharon", photo("Ariel_Sharon", 4)),
            ("Hugo_Chavez", photo("Hugo_Chavez", 2)),
        ],
    )
    start = audit_head(lfr_config)

    dry = import_manifest(lfr_config, "dry", manifest, "--dry-run", "--report", tmp_path / "dry.csv")

    assert dry.code == 1
    assert dry.out == (
        "dry run: 2 of 3 rows would be enrolled into dry; 0 already enrolled, 1 refused;"
        " nothing was written to the gallery\n"
    )
    assert "lfr: refused row 3, photo: " in dry.err and "3 faces found" in dry.err
    assert statuses(tmp_path / "dry.csv") == [(2, "would-enrol"), (3, "refused"), (4, "would-enrol")]
    assert stored(lfr_config, "dry") == [] and batches_written(lfr_config, "dry") == 0
    (entry,) = audit_entries(lfr_config, start)
    assert (entry.action, entry.subject) == (AuditAction.REQUEST, "watchlist:dry")
    assert {k: entry.details[k] for k in ("stage", "rows", "would-enrol", "refused", "refused_rows")} == {
        "stage": "dry run",
        "rows": 3,
        "would-enrol": 2,
        "refused": 1,
        "refused_rows": "3",
    }

    real = import_manifest(lfr_config, "dry", manifest)
    assert real.code == 1 and "enrolled 2 of 3 rows into dry" in real.out, "the dry run counted rows as enrolled"


def test_every_kind_of_bad_row_is_refused_with_its_row_and_reason_and_the_others_are_enrolled(lfr_config, tmp_path):
    create(lfr_config, "badrows")
    street = street_frame(tmp_path / "street.png")
    truncated = tmp_path / "truncated.jpg"
    data = photo("Tony_Blair", 2).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    group = photo("Ariel_Sharon", 4)
    header = (*HEADER, "face")
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            ("Colin_Powell", photo("Colin_Powell", 3)),
            ("Colin Powell", photo("Colin_Powell", 4)),
            ("Tony_Blair", "missing.jpg"),
            ("Tony_Blair", truncated),
            ("Nobody", street),
            ("Ariel_Sharon", group),
            ("Hugo_Chavez", photo("Hugo_Chavez", 3), "", "", "next week"),
            ("Hugo_Chavez", photo("Hugo_Chavez", 4), "", "", "+400"),
            ("Donald_Rumsfeld", photo("Donald_Rumsfeld", 2)),
            ("Ariel_Sharon", group, "", "", "", "", "5"),
        ],
        header,
    )
    start = audit_head(lfr_config)

    ran = import_manifest(lfr_config, "badrows", manifest, "--report", tmp_path / "report.csv")

    assert ran.code == 1
    assert "enrolled 2 of 10 rows into badrows (1 batch); 0 already enrolled, 8 refused" in ran.out
    expected = {
        3: ("person_id", "person_id must be 1-64 characters of letters, digits and . _ : -"),
        4: ("photo", f"no file {tmp_path / 'missing.jpg'}"),
        5: ("photo", f"{truncated}: the image data is corrupt or truncated"),
        6: ("photo", f"{street}: no face found"),
        7: ("photo", f"{group}: 3 faces found"),
        8: ("expiry", "expiry 'next week': pass +DAYS"),
        9: ("expiry", "'+400' is after the watchlist's own expiry"),
        11: ("photo", "--face 5 asked for, but 3 faces found"),
    }
    refusals = [line for line in ran.err.splitlines() if line.startswith("lfr: refused row ")]
    assert len(refusals) == len(expected)
    for line, (number, (column, reason)) in zip(refusals, expected.items()):
        assert line.startswith(f"lfr: refused row {number}, {column}: ") and reason in line, line
    report = {int(r["row"]): r for r in report_rows(tmp_path / "report.csv")}
    assert sorted(report) == list(range(2, 12))
    assert {n for n, r in report.items() if r["status"] == "enrolled"} == {2, 10}
    for number, (column, reason) in expected.items():
        assert report[number]["status"] == "refused" and report[number]["column"] == column
        assert reason in report[number]["reason"]
    assert [person for person, *_ in stored(lfr_config, "badrows")] == ["Colin_Powell", "Donald_Rumsfeld"]
    entries = audit_entries(lfr_config, start)
    assert [e.details["row"] for e in entries if e.action == AuditAction.ENROLMENT] == [2, 10]
    assert entries[-1].details["refused_rows"] == "3-9, 11"


def test_a_face_column_enrols_the_named_face_of_a_group_photo(lfr_config, tmp_path, face_pipeline):
    """Face 1 of Ariel_Sharon_0004 is Sharon; face 1 of face_recognition's obama.jpg is one of its two faces."""
    create(lfr_config, "faces")
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [("Ariel_Sharon", photo("Ariel_Sharon", 4), "", "", "", "", "1"), ("Obama", FACE_RECOGNITION / "obama.jpg")],
        (*HEADER, "face"),
    )
    ran = import_manifest(lfr_config, "faces", manifest, "--report", tmp_path / "report.csv")
    assert ran.code == 1 and "row 3, photo: " in ran.err and "2 faces found" in ran.err
    (enrolled, _) = report_rows(tmp_path / "report.csv")
    assert (enrolled["status"], enrolled["face_index"]) == ("enrolled", "1")
    probes = face_pipeline.process([load_image(photo("Ariel_Sharon", n)) for n in (2, 3)])
    with opened_gallery(lfr_config) as gallery:
        version = gallery.watchlists.freeze("faces")
        found = gallery.watchlists.search(np.stack([faces[0].embedding for faces in probes]), version)
    assert all(c[0].entry.person_id == "Ariel_Sharon" and c[0].similarity >= THRESHOLD for c in found)


def test_a_person_removed_since_is_enrolled_again_by_the_next_import(lfr_config, tmp_path):
    create(lfr_config, "removed")
    manifest = write_manifest(tmp_path / "manifest.csv", [("Vladimir_Putin", photo("Vladimir_Putin", 2))])
    assert import_manifest(lfr_config, "removed", manifest).code == 0
    assert lfr(lfr_config, "watchlist", "remove", "removed", "Vladimir_Putin").code == 0

    again = import_manifest(lfr_config, "removed", manifest)

    assert again.code == 0 and "enrolled 1 of 1 rows into removed" in again.out
    assert [person for person, *_ in stored(lfr_config, "removed")] == ["Vladimir_Putin"]


def test_rows_go_in_chunks_and_a_crash_before_a_chunk_commits_leaves_its_rows_to_the_next_run(
    lfr_config, tmp_path, monkeypatch
):
    """A chunk whose rows reached Milvus but whose batch never committed is not counted as enrolled."""
    create(lfr_config, "crash")
    monkeypatch.setattr(watchlist_import, "ENROL_CHUNK", 2)
    rows = [
        ("Tony_Blair", photo("Tony_Blair", 4)),
        ("Colin_Powell", photo("Colin_Powell", 5)),
        ("Hugo_Chavez", photo("Hugo_Chavez", 5)),
        ("Jacques_Chirac", photo("Jacques_Chirac", 2)),
        ("George_W_Bush", photo("George_W_Bush", 3)),
    ]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    finish_batch = Catalogue.finish_batch
    commits: list[int] = []

    def crash_on_second_commit(self, watchlist_id, batch, committed, entries, keys=()):
        if committed and watchlist_id == "crash":
            commits.append(batch)
            if len(commits) == 2:
                raise RuntimeError("simulated crash between the Milvus insert and the catalogue commit")
        finish_batch(self, watchlist_id, batch, committed, entries, keys)

    monkeypatch.setattr(Catalogue, "finish_batch", crash_on_second_commit)
    start = audit_head(lfr_config)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_manifest(lfr_config, "crash", manifest, "--report", tmp_path / "crashed.csv")
    monkeypatch.setattr(Catalogue, "finish_batch", finish_batch)
    assert statuses(tmp_path / "crashed.csv") == [(2, "enrolled"), (3, "enrolled")]
    stopped = audit_entries(lfr_config, start)[-1]
    assert stopped.details["stage"] == "stopped" and "simulated crash" in stopped.details["error"]

    rerun = import_manifest(lfr_config, "crash", manifest, "--report", tmp_path / "rerun.csv")

    assert rerun.code == 0, rerun.err
    assert "enrolled 3 of 5 rows into crash (2 batches); 2 already enrolled, 0 refused" in rerun.out
    assert statuses(tmp_path / "rerun.csv") == [
        (2, "skipped-already-enrolled"),
        (3, "skipped-already-enrolled"),
        (4, "enrolled"),
        (5, "enrolled"),
        (6, "enrolled"),
    ]
    assert [int(r["batch"]) for r in report_rows(tmp_path / "rerun.csv")[2:]] == [3, 3, 4]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("unknown", "person_id,photo,nickname\nA1,a.jpg,x\n", "unknown column 'nickname' in the header"),
        ("lacking", "person_id\nA1\n", "the header lacks photo"),
        ("empty", "person_id,photo\n", "has a header but no rows"),
    ],
)
def test_a_manifest_that_cannot_be_used_does_nothing_and_exits_2(lfr_config, tmp_path, name, text, message):
    create(lfr_config, name)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(text)
    start = audit_head(lfr_config)
    ran = import_manifest(lfr_config, name, manifest)
    assert ran.code == 2 and message in ran.err and ran.out == ""
    assert audit_entries(lfr_config, start) == []


def test_a_report_that_would_overwrite_the_manifest_is_refused(lfr_config, tmp_path):
    create(lfr_config, "overwrite")
    manifest = write_manifest(tmp_path / "manifest.csv", [("Tony_Blair", photo("Tony_Blair", 1))])
    ran = import_manifest(lfr_config, "overwrite", manifest, "--report", manifest)
    assert ran.code == 2 and "is the manifest itself" in ran.err
    assert manifest.read_text().startswith("person_id,photo")


def test_thousands_of_refused_rows_are_audited_as_ranges_not_as_a_list_of_numbers(lfr_config, tmp_path):
    """Regression: the closing audit entry listed refused rows as numbers; the audit log refuses a list of more
    than 16 numbers (it looks like an embedding), so an import that refused many rows failed after enrolling."""
    create(lfr_config, "many")
    rows = [("Colin_Powell", photo("Colin_Powell", 6)), *((f"bad id {n}", photo("Colin_Powell", 6)) for n in range(30))]
    start = audit_head(lfr_config)
    ran = import_manifest(lfr_config, "many", write_manifest(tmp_path / "manifest.csv", rows))
    assert ran.code == 1 and "enrolled 1 of 31 rows into many (1 batch); 0 already enrolled, 30 refused" in ran.out
    closing = audit_entries(lfr_config, start)[-1]
    assert (closing.details["stage"], closing.details["refused_rows"], closing.details["batches"]) == (
        "finished",
        "3-32",
        "1",
    )


@pytest.mark.parametrize(
    ("numbers", "text"),
    [
        ([], ""),
        ([4], "4"),
        ([3, 4, 5, 9, 11, 12], "3-5, 9, 11-12"),
        ([7, 2, 3, 3], "2-3, 7"),
        (range(1, 10_001), "1-10000"),
    ],
)
def test_number_ranges(numbers, text):
    assert number_ranges(numbers) == text
