"""`lfr watchlist` and `lfr gallery stop` on a real milvus-lite gallery, real lfw10 photos and a real audit log.

Each test module that runs gallery commands gets its own embedded milvus-lite server over a
temporary folder (`lite_lfr_config`), stopped and checked gone at the end. `lfr` runs the commands
in this process through the command groups' `register` functions, as `lfr` itself does.
`lite_lfr_config`, `lfr` and the audit helpers are shared with tests/test_social_cli.py and tests/test_retro.py.
"""

import argparse
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest
import structlog
from PIL import Image

from cluster.audit.actions import AuditAction
from cluster.audit.entry import AuditEntry
from cluster.audit.intents import INTENT, OPERATION, PHASE, RESULT
from cluster.audit.log import AuditLog
from cluster.cli import evaluate_commands, retro_commands, social_commands, watchlist_commands
from cluster.cli.watchlist_commands import parse_expiry
from cluster.config import LfrConfig
from cluster.crowd.background import STREET
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.gallery.config import GalleryConfig, LiteBackendConfig, RetryConfig
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.gallery.records import WatchlistEntry
from cluster.logging_setup import configure_logging
from cluster.processes import process_running
from cluster.vision.config import FaceModelsConfig
from cluster.vision.image_io import load_image
from tests.audit_key import TEST_SEALER
from tests.paths import LFW10
from tests.records import opened_gallery

pytestmark = pytest.mark.slow

THRESHOLD = LfrConfig().matching.similarity_threshold
STREET_VIDEO = STREET
RETRO_AUTHORISED = ("--officer", "DS Patel", "--reason", "Op Falcon: robbery at Oxford Circus, ref CAD 4412")
"""The named officer and reason every `lfr retro` needs."""


@dataclass(frozen=True)
class Ran:
    """What one `lfr` command returned and wrote."""

    code: int
    out: str
    err: str


def photo(person: str, number: int) -> Path:
    return LFW10 / person / f"{person}_{number:04d}.jpg"


@contextmanager
def lite_lfr_config(root: Path) -> Iterator[LfrConfig]:
    """A configuration whose gallery (milvus-lite, Strong) and records database (catalogue, audit) live under `root`.

    Its milvus-lite server runs while the context is open and is stopped, and checked gone, after.
    """
    gallery = GalleryConfig(
        backend=LiteBackendConfig(data_dir=root / "milvus"),
        consistency="Strong",
        retry=RetryConfig(attempts=3, initial_backoff_s=0.05, max_backoff_s=0.2),
    )
    config = LfrConfig(
        face_models=FaceModelsConfig(device="cpu"),
        gallery=gallery,
        database=DatabaseConfig(url=str(root / "lfr.sqlite3")),
    )
    logging_before = structlog.get_config()
    configure_logging("warning")
    embedded = EmbeddedMilvus(gallery.backend, gallery.timeouts)
    started = embedded.ensure_running()
    try:
        yield config
    finally:
        structlog.configure(**logging_before)
        last = embedded.running()
        embedded.stop()
    assert not process_running(started.pid) and (last is None or not process_running(last.pid))


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        yield config


def lfr(config: LfrConfig, *argv: object) -> Ran:
    """Run one `lfr` command in this process, as `lfr` does after loading its configuration."""
    parser = argparse.ArgumentParser(prog="lfr")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (watchlist_commands, social_commands, retro_commands, evaluate_commands):
        group.register(commands)
    args = parser.parse_args([str(arg) for arg in argv])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args, config)
    return Ran(code, out.getvalue(), err.getvalue())


def audit_entries(config: LfrConfig, after_seq: int = 0, *, intents: bool = False) -> list[AuditEntry]:
    """The audit entries written since `after_seq`, after checking the whole chain is intact.

    Intent entries (written before each gallery change) are left out unless `intents`: each is
    followed by its outcome entry, which holds what the change did.
    """
    log = AuditLog(Database(config.database.url), TEST_SEALER, create=False)
    assert log.verify().ok
    return [entry for entry in log.entries(after_seq) if intents or entry.details.get(PHASE) != INTENT]


def facts(entry: AuditEntry) -> dict:
    """An entry's details without the intent/outcome bookkeeping (phase, operation id, result)."""
    return {key: value for key, value in entry.details.items() if key not in (PHASE, OPERATION, RESULT)}


def audit_head(config: LfrConfig) -> int:
    return AuditLog(Database(config.database.url), TEST_SEALER).head().seq


def holds_no_vector(value: object) -> bool:
    """Whether audit details hold nothing that could be an embedding (a long run of numbers)."""
    if isinstance(value, dict):
        return all(holds_no_vector(item) for item in value.values())
    if isinstance(value, list):
        numbers = sum(isinstance(item, float) for item in value)
        return numbers < 16 and all(holds_no_vector(item) for item in value)
    return True


def street_frame(path: Path) -> Path:
    """A real frame of the street clip (people too small to be faces), saved as PNG: a photo with no face."""
    with av.open(str(STREET_VIDEO)) as container:
        frame = next(container.decode(video=0))
        Image.fromarray(frame.to_ndarray(format="rgb24")).save(path)
    return path


def create(config: LfrConfig, name: str, *extra: str) -> Ran:
    ran = lfr(
        config,
        "watchlist", "create", name,
        "--authorised-by", "Supt. A. Example",
        "--reason", "Wanted for serious offences; authorised for one deployment",
        "--expires", "+30",
        *extra,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    return ran


def test_attributes_recorded_at_enrolment_are_validated_audited_and_forgotten_with_the_person(lfr_config):
    """What the deployment report's breakdown rests on: the values stay in the catalogue (deleted with the
    person), the audit log gets their names and a keyed digest, and a bad value enrols nothing."""
    create(lfr_config, "attributes")
    start = audit_head(lfr_config)
    bad = lfr(lfr_config, "watchlist", "add", "attributes", "Colin_Powell", photo("Colin_Powell", 1),
              "--attribute", "sex=man")  # fmt: skip
    assert bad.code == 2 and "--attribute: sex 'man' is not one of female, male" in bad.err
    assert audit_head(lfr_config) == start, "a refused attribute writes nothing, not even an intent"
    added = lfr(lfr_config, "watchlist", "add", "attributes", "Colin_Powell", photo("Colin_Powell", 1),
                "--attribute", "sex=male", "--attribute", "age_band=65_plus", "--category", "missing")  # fmt: skip
    assert added.code == 0, added.err
    with opened_gallery(lfr_config) as gallery:
        (person,) = gallery.watchlists.catalogue.people("attributes")
    assert (person.person_id, person.category) == ("Colin_Powell", "missing")
    assert person.attributes.recorded() == {"sex": "male", "age_band": "65_plus"}
    (enrolled,) = [e for e in audit_entries(lfr_config, start) if e.action is AuditAction.ENROLMENT]
    assert enrolled.details["attributes"] == ["age_band", "sex"]
    assert enrolled.details["attributes_digest"] == TEST_SEALER.reason_digest(person.attributes.canonical())
    assert "65_plus" not in json.dumps(enrolled.details), "the values stay out of the log, which is kept for ever"
    removed = lfr(lfr_config, "watchlist", "remove", "attributes", "Colin_Powell")
    assert removed.code == 0, removed.err
    with opened_gallery(lfr_config) as gallery:
        assert gallery.watchlists.catalogue.people("attributes") == []


def test_enrol_list_show_freeze_remove_are_done_and_audited(lfr_config):
    start = audit_head(lfr_config)
    created = create(lfr_config, "west_end")
    assert "created watchlist west_end, authorised by Supt. A. Example" in created.out

    bush = lfr(lfr_config, "watchlist", "add", "west_end", "George_W_Bush", photo("George_W_Bush", 1),
               photo("George_W_Bush", 2), "--label", "George W Bush")  # fmt: skip
    assert bush.code == 0, bush.err
    assert "enrolled 2 photos of George_W_Bush into west_end (batch 1)" in bush.out
    blair = lfr(lfr_config, "watchlist", "add", "west_end", "Tony_Blair", photo("Tony_Blair", 1),
                "--category", "missing", "--source", "family photo", "--officer", "PC 1234 Khan")  # fmt: skip
    assert blair.code == 0, blair.err

    listed = lfr(lfr_config, "watchlist", "list", "--json")
    assert listed.code == 0, listed.err
    (record,) = [w for w in json.loads(listed.out)["watchlists"] if w["watchlist_id"] == "west_end"]
    assert (record["entries"], record["versions"], record["expired"]) == (3, [], False)

    frozen = lfr(lfr_config, "watchlist", "freeze", "west_end")
    assert (frozen.code, frozen.out) == (0, "west_end@v1\n")

    shown = json.loads(lfr(lfr_config, "watchlist", "show", "west_end", "--json").out)
    people = sorted((e["person_id"], e["label"], e["category"], e["authorised_by"]) for e in shown["entries"])
    assert people == [
        ("George_W_Bush", "George W Bush", "wanted", "Supt. A. Example"),
        ("George_W_Bush", "George W Bush", "wanted", "Supt. A. Example"),
        ("Tony_Blair", "Tony_Blair", "missing", "PC 1234 Khan"),
    ]
    assert {e["source"] for e in shown["entries"] if e["person_id"] == "Tony_Blair"} == {"family photo"}
    assert [(v["version"], v["entries"]) for v in shown["versions"]] == [("west_end@v1", 3)]
    text = lfr(lfr_config, "watchlist", "show", "west_end")
    assert "authorised by Supt. A. Example" in text.out and "west_end@v1: 3 entries" in text.out

    removed = lfr(lfr_config, "watchlist", "remove", "west_end", "George_W_Bush", "--officer", "DS Patel")
    assert (removed.code, removed.out) == (0, "removed 2 entries of George_W_Bush from west_end\n")
    with opened_gallery(lfr_config) as gallery:
        assert gallery.watchlists.entries("west_end", "George_W_Bush") == [], "removed entries are still stored"
        assert [e.person_id for e in gallery.watchlists.entries("west_end")] == ["Tony_Blair"]
        version = gallery.watchlists.version("west_end@v1")
    again = lfr(lfr_config, "watchlist", "remove", "west_end", "George_W_Bush")
    assert again.code == 1 and "holds no entry of 'George_W_Bush'" in again.err

    entries = audit_entries(lfr_config, start)
    assert [(e.action, e.subject) for e in entries] == [
        (AuditAction.WATCHLIST_CHANGE, "watchlist:west_end"),
        (AuditAction.ENROLMENT, "watchlist:west_end"),
        (AuditAction.ENROLMENT, "watchlist:west_end"),
        (AuditAction.REQUEST, "watchlists"),
        (AuditAction.WATCHLIST_CHANGE, "watchlist:west_end"),
        (AuditAction.REQUEST, "watchlist:west_end"),
        (AuditAction.REQUEST, "watchlist:west_end"),
        (AuditAction.WATCHLIST_CHANGE, "watchlist:west_end"),
        (AuditAction.WATCHLIST_CHANGE, "watchlist:west_end"),
    ]
    created_entry, bush_entry, blair_entry = entries[:3]
    assert created_entry.actor == "Supt. A. Example" and created_entry.details["change"] == "created"
    assert created_entry.details["reason"].startswith("Wanted for serious offences")
    assert bush_entry.actor == "Supt. A. Example", "without --officer the authorising officer enrols"
    assert bush_entry.details["entries"] == 2 and bush_entry.details["person_id"] == "George_W_Bush"
    assert blair_entry.actor == "PC 1234 Khan"
    assert facts(entries[4]) == {
        "change": "frozen",
        "version": "west_end@v1",
        "entries": 3,
        "people": 2,
        "categories": {"missing": 1, "wanted": 1},
        "digest": version.digest,
        "calibration": version.calibration.record(),
    }
    assert version.calibration.list_size == 3 and version.calibration.target_fpir == LfrConfig().matching.target_fpir
    assert entries[7].actor == "DS Patel"
    assert facts(entries[7]) == {"change": "person_removed", "person_id": "George_W_Bush", "entries_deleted": 2}
    assert entries[8].details["entries_deleted"] == 0
    assert all(holds_no_vector(dict(e.details)) for e in entries)


def test_purge_expired_deletes_only_expired_entries(lfr_config, face_pipeline):
    create(lfr_config, "purging")
    kept = lfr(lfr_config, "watchlist", "add", "purging", "Colin_Powell", photo("Colin_Powell", 1))
    assert kept.code == 0, kept.err
    (faces,) = face_pipeline.process([load_image(photo("Hugo_Chavez", 1))])
    now = int(time.time())
    with opened_gallery(lfr_config) as gallery:
        gallery.watchlists.enrol(
            "purging",
            [
                WatchlistEntry(
                    person_id="Hugo_Chavez",
                    label="Hugo Chavez",
                    category="wanted",
                    source="enrolled 100 s ago with a 50 s expiry",
                    authorised_by="Supt. A. Example",
                    embedding=faces[0].embedding,
                    expires_at=now - 50,
                )
            ],
            now=now - 100,
        )
        assert gallery.watchlists.count("purging") == 2
    start = audit_head(lfr_config)

    purged = lfr(lfr_config, "watchlist", "purge-expired", "--officer", "system:retention")
    assert (purged.code, purged.out) == (0, "purged 1 expired entry\n")
    with opened_gallery(lfr_config) as gallery:
        assert [e.person_id for e in gallery.watchlists.entries("purging")] == ["Colin_Powell"]
    (entry,) = audit_entries(lfr_config, start)
    assert (entry.actor, entry.action, entry.subject) == ("system:retention", AuditAction.PURGE, "watchlist entries")
    assert entry.details["entries_deleted"] == 1


def test_photos_without_exactly_one_face_are_refused_by_name_and_the_rest_enrolled(lfr_config, tmp_path):
    create(lfr_config, "refusals")
    group = photo("Ariel_Sharon", 4)
    street = street_frame(tmp_path / "street.png")
    truncated = tmp_path / "truncated.jpg"
    data = photo("Tony_Blair", 2).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    start = audit_head(lfr_config)

    ran = lfr(
        lfr_config, "watchlist", "add", "refusals", "Tony_Blair", group, street, truncated, photo("Tony_Blair", 3)
    )
    assert ran.code == 1
    assert "enrolled 1 photo of Tony_Blair into refusals" in ran.out
    assert f"{group}: 3 faces found" in ran.err and "pass --face N" in ran.err
    assert f"{street}: no face found" in ran.err
    assert f"{truncated}: the image data is corrupt or truncated" in ran.err
    assert "3 of 4 photos refused" in ran.err
    (entry,) = audit_entries(lfr_config, start)
    assert entry.action == AuditAction.ENROLMENT and entry.details["entries"] == 1
    assert (entry.details["photos"]["count"], entry.details["photos"]["first"]) == (1, [str(photo("Tony_Blair", 3))])
    assert entry.details["refused"]["first"] == [str(group), str(street), str(truncated)]

    nothing = lfr(lfr_config, "watchlist", "add", "refusals", "Ariel_Sharon", group)
    assert nothing.code == 1 and "nothing enrolled" in nothing.err
    out_of_range = lfr(lfr_config, "watchlist", "add", "refusals", "Ariel_Sharon", group, "--face", "5")
    assert out_of_range.code == 1 and "--face 5 asked for, but 3 faces found" in out_of_range.err
    with opened_gallery(lfr_config) as gallery:
        assert [e.person_id for e in gallery.watchlists.entries("refusals")] == ["Tony_Blair"]


def test_face_option_enrols_the_chosen_face_of_a_group_photo(lfr_config, face_pipeline):
    """Face 1 of Ariel_Sharon_0004 is Sharon (faces 0 and 2 are bystanders): his other photos then find him."""
    create(lfr_config, "chosen")
    ran = lfr(lfr_config, "watchlist", "add", "chosen", "Ariel_Sharon", photo("Ariel_Sharon", 4), "--face", "1")
    assert ran.code == 0, ran.err
    probes = face_pipeline.process([load_image(photo("Ariel_Sharon", n)) for n in (2, 3)])
    with opened_gallery(lfr_config) as gallery:
        version = gallery.watchlists.freeze("chosen")
        found = gallery.watchlists.search(np.stack([faces[0].embedding for faces in probes]), version)
    assert all(c[0].entry.person_id == "Ariel_Sharon" and c[0].similarity >= THRESHOLD for c in found)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("watchlist", "add", "nowhere", "Tony_Blair", photo("Tony_Blair", 1)), "no watchlist 'nowhere'"),
        (("watchlist", "show", "nowhere"), "no watchlist 'nowhere'"),
        (("watchlist", "freeze", "nowhere"), "no watchlist 'nowhere'"),
        (("watchlist", "remove", "nowhere", "Tony_Blair"), "no watchlist 'nowhere'"),
        (("watchlist", "add", "nowhere", "Tony Blair", photo("Tony_Blair", 1)), "PERSON_ID must be 1-64 characters"),
        (
            ("watchlist", "create", "bad", "--authorised-by", "X", "--reason", "r", "--expires", "next week"),
            "--expires 'next week': pass +DAYS",
        ),
        (
            ("watchlist", "create", "bad", "--authorised-by", "X", "--reason", "r", "--expires", "2001-01-01"),
            "must be in the future",
        ),
    ],
)
def test_bad_requests_do_nothing_and_exit_2(lfr_config, argv, message):
    ran = lfr(lfr_config, *argv)
    assert ran.code == 2 and message in ran.err, ran.err
    assert ran.out == ""


def test_existing_watchlist_cannot_be_created_twice(lfr_config):
    create(lfr_config, "twice")
    again = lfr(lfr_config, "watchlist", "create", "twice", "--authorised-by", "X", "--reason", "r", "--expires", "+1")
    assert again.code == 2 and "watchlist 'twice' already exists" in again.err


def test_an_expired_watchlist_is_listed_as_such_and_takes_no_enrolment_or_search(lfr_config, tmp_path):
    now = int(time.time())
    with opened_gallery(lfr_config) as gallery:
        gallery.watchlists.create(
            "lapsed", "lapsed", "authorised for one day", "Supt. A. Example", now - 10, now=now - 100
        )
    listed = lfr(lfr_config, "watchlist", "list")
    assert "lapsed: 0 entries, latest version not frozen, EXPIRED" in listed.out
    added = lfr(lfr_config, "watchlist", "add", "lapsed", "Tony_Blair", photo("Tony_Blair", 1))
    assert added.code == 2 and "watchlist 'lapsed' expired at" in added.err and "renew its authorisation" in added.err
    searched = lfr(
        lfr_config, "retro", photo("Tony_Blair", 2), "--watchlist", "lapsed", "--out", tmp_path, *RETRO_AUTHORISED
    )
    assert searched.code == 2 and "it may no longer be searched" in searched.err
    with opened_gallery(lfr_config) as gallery:
        assert gallery.watchlists.versions("lapsed") == [], "an expired watchlist was frozen for a search"


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+30", NOW + 30 * 86400),
        ("+0.5", NOW + 43200),
        ("2026-06-30", datetime(2026, 7, 1, tzinfo=UTC).timestamp()),
        ("2026-06-30T18:00:00+01:00", datetime(2026, 6, 30, 17, 0, tzinfo=UTC).timestamp()),
        ("2026-06-30T18:00", datetime(2026, 6, 30, 18, 0, tzinfo=UTC).timestamp()),
        ("+0", ValueError),
        ("+ninety", ValueError),
        ("+inf", ValueError),
        ("soon", ValueError),
        ("30/06/2026", ValueError),
    ],
)
def test_expiry_forms(text, expected):
    if expected is ValueError:
        with pytest.raises(ValueError, match="--expires"):
            parse_expiry(text, now=NOW)
    else:
        assert parse_expiry(text, now=NOW) == int(expected)


def test_gallery_stop_ends_the_embedded_server_and_the_next_command_restarts_it(lfr_config):
    create(lfr_config, "restart")
    embedded = EmbeddedMilvus(lfr_config.gallery.backend, lfr_config.gallery.timeouts)
    running = embedded.running()
    assert running is not None
    stopped = lfr(lfr_config, "gallery", "stop")
    assert stopped.code == 0 and "stopped the embedded milvus-lite server" in stopped.out
    assert not process_running(running.pid) and embedded.running() is None
    assert "no embedded milvus-lite server was running" in lfr(lfr_config, "gallery", "stop").out
    listed = lfr(lfr_config, "watchlist", "list")
    assert listed.code == 0 and "restart: 0 entries" in listed.out
    restarted = embedded.running()
    assert restarted is not None and restarted.pid != running.pid
