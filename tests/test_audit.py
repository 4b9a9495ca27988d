"""The hash-chained audit log on real SQLite files and a real throwaway PostgreSQL server.

Tampering is done the way an insider with database access would do it: plain SQL on the
tables, recomputing hashes with the public algorithm where that helps the forgery.
"""

import argparse
import errno
import itertools
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.config import AuditConfig, default_anchor_path
from cluster.audit.entry import AuditAnchor, entry_payload, head_payload
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import configured_sealer
from cluster.audit.sealing import Sealer, sealer_from_env, write_key_file
from cluster.audit.tables import audit_head, audit_log
from cluster.audit.verification import Problem
from cluster.cli import audit_commands
from cluster.config import LfrConfig
from cluster.database.engine import Database
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.audit_key import TEST_SEALER
from tests.waiting import scaled, wait_for

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]
KEY = b"k" * 16 + b"0123456789abcdef"
OTHER_KEY = b"x" * 32
ENTRIES = 8
WAIT_S = 30.0


class TickingClock:
    """Each reading is a little later than the last, with a fraction that a float round trip would show."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return 1_749_902_400.123456 + next(self._ticks) * 1.5


@pytest.fixture(scope="module")
def postgres():
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    target = (
        tmp_path / "audit.sqlite3"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres").empty_database()
    )
    with Database(target) as db:
        yield db


def write_chain(audit: AuditLog, count: int = ENTRIES) -> None:
    steps = [
        ("PC 1234 Khan", AuditAction.LOGIN, "PC 1234 Khan", {}),
        ("system:coordinator", AuditAction.ALERT_RAISED, "alert-1", {"cameras": ["oxford_st_2"], "confidence": 0.91}),
        ("PC 1234 Khan", AuditAction.ADJUDICATION, "alert-1", {"from": "new", "to": "acknowledged", "reason": ""}),
        ("DS Patel", AuditAction.SEARCH, "probe-77", {"collection": "social_media", "top_k": 10, "hits": 2}),
        ("admin", AuditAction.CONFIG_CHANGE, "configs/west_end.yaml", {"changed": ["matching.similarity_threshold"]}),
        ("system:retention", AuditAction.PURGE, "alerts", {"alerts": 3, "crops": 4, "alert_ids": ["a", "b", "c"]}),
        ("DS Patel", AuditAction.WATCHLIST_CHANGE, "west_end_wanted", {"added": 1, "version": "2025-06-14.1"}),
        ("api", AuditAction.REQUEST, "GET /alerts", {"status": 200, "résumé": "naïve ünïcode ✓"}),
    ]
    for actor, action, subject, details in itertools.islice(itertools.cycle(steps), count):
        audit.record(actor, action, subject, details)


@pytest.fixture
def audit(database):
    log = AuditLog(database, clock=TickingClock())
    write_chain(log)
    return log


def execute(database: Database, statement) -> None:
    """Tamper as an insider would: plain SQL, committed."""
    with database.engine.begin() as connection:
        connection.execute(statement)


def row(database: Database, seq: int) -> sa.Row:
    with database.engine.connect() as connection:
        return connection.execute(sa.select(audit_log).where(audit_log.c.seq == seq)).one()


def forged_hash(values, sealer: Sealer) -> str:
    """The hash an attacker computes for an entry they rewrote (with the public algorithm)."""
    return sealer.digest(
        entry_payload(
            values["seq"],
            values["at"],
            values["actor"],
            values["action"],
            values["subject"],
            values["details"],
            values["key_id"],
            values["prev_hash"],
        )
    )


def rewrite_from(database: Database, seq: int, change: dict, sealer: Sealer) -> None:
    """Edit entry `seq` and recompute every hash after it, head record included: a full rewrite."""
    with database.engine.begin() as connection:
        rows = [dict(r._mapping) for r in connection.execute(sa.select(audit_log).order_by(audit_log.c.seq))]
        previous = rows[seq - 2]["hash"] if seq > 1 else "0" * 64
        for values in rows[seq - 1 :]:
            if values["seq"] == seq:
                values.update(change)
            values["prev_hash"] = previous
            values["hash"] = previous = forged_hash(values, sealer)
            connection.execute(audit_log.update().where(audit_log.c.seq == values["seq"]).values(**values))
        last = rows[-1]
        connection.execute(
            audit_head.update().values(
                seq=last["seq"],
                hash=last["hash"],
                seal=sealer.digest(head_payload(last["seq"], last["hash"], last["key_id"])),
            )
        )


def swap_contents(database: Database, first: int, second: int) -> None:
    a, b = dict(row(database, first)._mapping), dict(row(database, second)._mapping)
    for values, other in ((a, b), (b, a)):
        fields = {k: v for k, v in other.items() if k != "seq"}
        fields["hash"] = "f" * 63 + str(values["seq"])
        execute(database, audit_log.update().where(audit_log.c.seq == values["seq"]).values(**fields))
    for values, other in ((a, b), (b, a)):
        execute(database, audit_log.update().where(audit_log.c.seq == values["seq"]).values(hash=other["hash"]))


def append_behind_the_writers_back(database: Database) -> None:
    """A well-formed entry added with plain SQL, leaving the head record as it was."""
    last = row(database, ENTRIES)
    values = {**last._mapping, "seq": ENTRIES + 1, "subject": "inserted later", "prev_hash": last.hash}
    values["hash"] = forged_hash(values, Sealer(None))
    execute(database, audit_log.insert().values(**values))


def swap_seqs(database: Database, first: int, second: int) -> None:
    execute(database, audit_log.update().where(audit_log.c.seq == first).values(seq=-1))
    execute(database, audit_log.update().where(audit_log.c.seq == second).values(seq=first))
    execute(database, audit_log.update().where(audit_log.c.seq == -1).values(seq=second))


# --- an untouched chain ----------------------------------------------------------------------------


def test_untouched_chain_verifies(audit):
    report = audit.verify()
    assert report.ok, report.summary()
    assert report.entries_checked == ENTRIES and report.head == audit.head()
    assert report.head.seq == ENTRIES
    assert audit.verify(anchor=report.head).ok
    entries = audit.entries()
    assert [e.seq for e in entries] == list(range(1, ENTRIES + 1))
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[-1].details == {"status": 200, "résumé": "naïve ünïcode ✓"}
    assert [e.seq for e in audit.latest(3)] == [6, 7, 8]


def test_an_empty_log_verifies(database):
    report = AuditLog(database).verify()
    assert report.ok and report.entries_checked == 0 and report.head is None


# --- tampering -------------------------------------------------------------------------------------

TAMPERING = [
    pytest.param(
        lambda db, log: execute(db, audit_log.update().where(audit_log.c.seq == 4).values(details='{"hits":0}')),
        4,
        Problem.EDITED,
        id="edit-details",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_log.update().where(audit_log.c.seq == 3).values(actor="PC 9999 Other")),
        3,
        Problem.EDITED,
        id="edit-actor",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_log.update().where(audit_log.c.seq == 2).values(at=0.0)),
        2,
        Problem.EDITED,
        id="edit-time",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_log.delete().where(audit_log.c.seq == 5)),
        5,
        Problem.REMOVED,
        id="delete-middle",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_log.delete().where(audit_log.c.seq == 1)),
        1,
        Problem.REMOVED,
        id="delete-first",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_log.delete().where(audit_log.c.seq == ENTRIES)),
        ENTRIES,
        Problem.TRUNCATED,
        id="delete-last",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_log.delete().where(audit_log.c.seq > 5)), 6, Problem.TRUNCATED, id="cut-tail"
    ),
    pytest.param(lambda db, log: swap_contents(db, 4, 5), 4, Problem.REORDERED, id="swap-contents"),
    pytest.param(lambda db, log: swap_seqs(db, 4, 5), 4, Problem.REORDERED, id="swap-seqs"),
    pytest.param(
        lambda db, log: execute(db, audit_log.update().where(audit_log.c.seq == 1).values(prev_hash="1" * 64)),
        1,
        Problem.BAD_GENESIS,
        id="bad-genesis",
    ),
    pytest.param(
        lambda db, log: execute(
            db,
            audit_log.update()
            .where(audit_log.c.seq == 4)
            .values(
                subject="probe-00",
                hash=forged_hash({**row(db, 4)._mapping, "subject": "probe-00"}, Sealer(None)),
            ),
        ),
        5,
        Problem.BROKEN_LINK,
        id="rewrite-one-with-its-hash",
    ),
    pytest.param(
        lambda db, log: execute(db, audit_head.delete()), ENTRIES, Problem.HEAD_MISSING, id="delete-head-record"
    ),
    pytest.param(
        lambda db, log: (execute(db, audit_log.delete()), execute(db, audit_head.delete())),
        1,
        Problem.HEAD_MISSING,
        id="delete-all",
    ),
    pytest.param(
        lambda db, log: append_behind_the_writers_back(db),
        ENTRIES + 1,
        Problem.HEAD_MISMATCH,
        id="append-behind-the-writers-back",
    ),
]


@pytest.mark.parametrize(("tamper", "first_bad_seq", "problem"), TAMPERING)
def test_tampering_is_detected_at_the_first_bad_entry(database, audit, tamper, first_bad_seq, problem):
    tamper(database, audit)
    report = audit.verify()
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (first_bad_seq, problem), report.summary()
    assert f"entry {first_bad_seq}" in report.summary() or f"entries {first_bad_seq}" in report.summary()


def test_a_full_rewrite_needs_the_key_or_an_anchor_to_show(database):
    """What cannot be detected without a key: a rewrite of every hash from the edited entry on,
    head record included, is a valid chain. An anchor taken earlier, or an HMAC key, shows it."""
    plain = AuditLog(database, clock=TickingClock())
    write_chain(plain)
    anchor = plain.head()
    rewrite_from(database, 3, {"actor": "PC 9999 Other"}, Sealer(None))
    assert plain.verify().ok, "without a key or an anchor, a full rewrite verifies: that is the limit"
    report = plain.verify(anchor)
    assert (report.first_bad_seq, report.problem) == (ENTRIES, Problem.ANCHOR_MISMATCH)


def test_with_an_hmac_key_a_full_rewrite_shows(database):
    keyed = AuditLog(database, Sealer(KEY), clock=TickingClock())
    write_chain(keyed)
    assert keyed.verify().ok
    rewrite_from(database, 3, {"actor": "PC 9999 Other", "key_id": Sealer(KEY).key_id}, Sealer(OTHER_KEY))
    report = keyed.verify()
    assert (report.first_bad_seq, report.problem) == (3, Problem.EDITED)


def test_truncation_with_a_rewound_head_needs_the_key_or_an_anchor_to_show(database):
    plain = AuditLog(database, clock=TickingClock())
    write_chain(plain)
    anchor = plain.head()
    last_kept = row(database, ENTRIES - 1)
    execute(database, audit_log.delete().where(audit_log.c.seq == ENTRIES))
    forged_seal = Sealer(None).digest(head_payload(last_kept.seq, last_kept.hash, ""))
    execute(database, audit_head.update().values(seq=last_kept.seq, hash=last_kept.hash, seal=forged_seal))
    assert plain.verify().ok, "without a key or an anchor, cutting the tail and rewinding the head is not visible"
    report = plain.verify(anchor)
    assert (report.first_bad_seq, report.problem) == (ENTRIES, Problem.TRUNCATED)

    keyed_view = AuditLog(database, Sealer(KEY), create=False)
    assert keyed_view.verify().problem == Problem.WRONG_KEY


def test_with_an_hmac_key_a_rewound_head_shows(database):
    keyed = AuditLog(database, Sealer(KEY), clock=TickingClock())
    write_chain(keyed)
    last_kept = row(database, ENTRIES - 1)
    execute(database, audit_log.delete().where(audit_log.c.seq == ENTRIES))
    forged_seal = Sealer(OTHER_KEY).digest(head_payload(last_kept.seq, last_kept.hash, Sealer(KEY).key_id))
    execute(database, audit_head.update().values(seq=last_kept.seq, hash=last_kept.hash, seal=forged_seal))
    report = keyed.verify()
    assert (report.first_bad_seq, report.problem) == (ENTRIES, Problem.HEAD_MISMATCH)


@pytest.mark.parametrize(
    ("written_with", "checked_with", "match"),
    [
        (KEY, None, "sealed with HMAC key id .* but this check uses no HMAC key"),
        (KEY, OTHER_KEY, "sealed with HMAC key id"),
        (None, KEY, "sealed with no HMAC key"),
    ],
    ids=["keyed-checked-without", "keyed-checked-with-another", "plain-checked-with-a-key"],
)
def test_the_wrong_key_is_named(database, written_with, checked_with, match):
    write_chain(AuditLog(database, Sealer(written_with), clock=TickingClock()), 2)
    report = AuditLog(database, Sealer(checked_with), create=False).verify()
    assert (report.first_bad_seq, report.problem) == (1, Problem.WRONG_KEY)
    assert re.search(match, report.detail), report.detail


def test_a_wiped_log_is_never_seeded_again(database, audit):
    """Before issue 14 a log whose entries and head were deleted verified as empty, and the next writer
    silently made a new genesis head: the wipe left no trace."""
    execute(database, audit_log.delete())
    execute(database, audit_head.delete())
    reopened = AuditLog(database, clock=TickingClock())
    report = reopened.verify()
    assert (report.first_bad_seq, report.problem) == (1, Problem.HEAD_MISSING), report.summary()
    assert "the log was wiped" in report.detail
    with pytest.raises(AuditLogError, match="head record is missing"):
        reopened.record("PC 1234 Khan", AuditAction.LOGIN, "PC 1234 Khan")


def test_a_restored_older_head_shows_against_the_anchor_file(database, tmp_path):
    """Rollback: the key holder's own older head record is validly sealed, so only the anchors show it."""
    anchors = AnchorFile(tmp_path / "audit.anchors")
    keyed = AuditLog(database, Sealer(KEY), clock=TickingClock(), anchors=anchors, anchor_interval_s=3600)
    write_chain(keyed, 3)
    with database.engine.connect() as connection:
        old_head = dict(connection.execute(sa.select(audit_head)).one()._mapping)
    write_chain(keyed, 3)
    keyed.close()
    assert keyed.verify(anchor_file=anchors).ok
    execute(database, audit_log.delete().where(audit_log.c.seq > 3))
    execute(database, audit_head.update().values(**old_head))
    assert keyed.verify().ok, "the chain and its restored head record agree: the database alone cannot show this"
    report = keyed.verify(anchor_file=anchors)
    assert (report.first_bad_seq, report.problem) == (4, Problem.TRUNCATED), report.summary()
    assert f"line 2 of {anchors.path}" in report.detail and "reached entry 6" in report.detail


def test_anchors_are_written_after_commits_rate_bounded_and_at_close(database, tmp_path):
    anchors = AnchorFile(tmp_path / "audit.anchors")
    keyed = AuditLog(database, Sealer(KEY), clock=TickingClock(), anchors=anchors, anchor_interval_s=3600)
    with pytest.raises(RuntimeError, match="rolled back"):
        with database.writing() as connection:
            keyed.append(connection, "PC 1234 Khan", AuditAction.LOGIN, "PC 1234 Khan")
            raise RuntimeError("rolled back")
    assert not anchors.exists(), "an append that rolled back is never anchored"
    write_chain(keyed, 5)
    lines = anchors.read(Sealer(KEY))
    assert [line.record.seq for line in lines] == [1], "the first commit is anchored, the next within the bound wait"
    keyed.close()
    assert [line.record.seq for line in anchors.read(Sealer(KEY))] == [1, 5]
    assert anchors.path.stat().st_mode & 0o777 == 0o600


REPO = Path(__file__).resolve().parent.parent
SHORT_WRITE = """
import resource, signal, sys
from pathlib import Path
from cluster.audit.anchors import AnchorFile, AnchorRecord
from cluster.audit.entry import AuditAnchor
from tests.audit_key import TEST_SEALER

anchors = AnchorFile(Path(sys.argv[1]))
anchors.append(AnchorRecord.sealed(TEST_SEALER, AuditAnchor(1, "ab" * 32), 1.0))
room = anchors.path.stat().st_size + 50
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))
try:
    anchors.append(AnchorRecord.sealed(TEST_SEALER, AuditAnchor(2, "cd" * 32), 2.0))
except OSError as exc:
    print("refused", exc.errno)
"""


def test_an_anchor_line_a_full_disk_cuts_short_is_taken_back(tmp_path):
    """A write that only part of a line fits (a full disk; here a file-size limit) used to leave that part in the
    file, so every later verification failed on a cut line; now the append is refused and the file stays whole."""
    path = tmp_path / "audit.anchors"
    child = subprocess.run(
        [sys.executable, "-c", SHORT_WRITE, str(path)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert child.stdout.strip() == f"refused {errno.ENOSPC}", child.stderr[-2000:]
    assert [line.record.seq for line in AnchorFile(path).read(TEST_SEALER)] == [1]


def test_the_anchor_timer_writes_heads_other_processes_appended(database, tmp_path):
    anchors = AnchorFile(tmp_path / "audit.anchors")
    server = AuditLog(database, Sealer(KEY), anchors=anchors, anchor_interval_s=0.05)
    other_process = AuditLog(database, Sealer(KEY), clock=TickingClock())
    server.anchors.start()
    try:
        write_chain(other_process, 4)
        wait_for(
            lambda: anchors.exists() and [line.record.seq for line in anchors.read(Sealer(KEY))][-1:] == [4],
            scaled(WAIT_S),
            "the timer's anchor of entry 4",
        )
    finally:
        server.close()


def test_appending_with_another_key_is_refused_naming_both(database):
    """Before issue 14 a process without the key (or with another) appended, and every later entry was
    `wrong_key` for ever. Now the head records the key id and such an append is refused."""
    keyed = AuditLog(database, Sealer(KEY), clock=TickingClock())
    write_chain(keyed, 2)
    for other in (Sealer(None), Sealer(OTHER_KEY)):
        with pytest.raises(AuditLogError) as refused:
            AuditLog(database, other).record("cli:someone", AuditAction.LOGIN, "cli:someone")
        message = str(refused.value)
        assert f"sealed with HMAC key id {Sealer(KEY).key_id}" in message and other.describe() in message
        assert "LFR_AUDIT_HMAC_KEY" in message
    assert keyed.verify().ok and keyed.head().seq == 2


# --- writing ------------------------------------------------------------------------------------


def test_concurrent_appends_keep_one_chain(database):
    """Eight writers, half through their own engine (as separate processes would be): no fork, no gap."""
    shared = AuditLog(database)
    url = database.url.render_as_string(hide_password=False)
    per_writer, errors = 25, []
    start = threading.Barrier(8)

    def writer(number: int) -> None:
        own = Database(url) if number % 2 else None
        try:
            log = AuditLog(own) if own is not None else shared
            start.wait(WAIT_S)
            for index in range(per_writer):
                log.record(f"writer-{number}", AuditAction.REQUEST, f"GET /alerts/{index}", {"n": index})
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            if own is not None:
                own.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S * 2)
    assert errors == []
    report = shared.verify()
    assert report.ok, report.summary()
    assert report.entries_checked == 8 * per_writer
    entries = shared.entries(limit=1000)
    assert {e.actor for e in entries} == {f"writer-{n}" for n in range(8)}


def test_an_entry_commits_or_rolls_back_with_the_change_it_records(database, audit):
    with pytest.raises(RuntimeError, match="the change failed"):
        with database.writing() as connection:
            audit.append(connection, "PC 1234 Khan", AuditAction.ADJUDICATION, "alert-1", {"to": "rejected"})
            raise RuntimeError("the change failed")
    assert audit.head().seq == ENTRIES and audit.verify().ok


def test_appending_outside_a_write_transaction_is_refused(database, audit):
    with database.reading() as connection, pytest.raises(AuditLogError, match="Database.writing"):
        audit.append(connection, "PC 1234 Khan", AuditAction.LOGIN, "PC 1234 Khan")


@pytest.mark.parametrize(
    ("actor", "subject", "details", "match"),
    [
        ("api", "alert-1", {"crop": b"\xff\xd8jpeg"}, "details.crop: bytes is not allowed"),
        ("api", "alert-1", {"embedding": np.zeros(128, np.float32)}, "ndarray is not allowed"),
        ("api", "alert-1", {"embedding": [0.01] * 128}, "details.embedding: a list of 128 numbers looks like an"),
        ("api", "alert-1", {"probe": {"vector": list(range(20))}}, "details.probe.vector"),
        ("api", "alert-1", {"score": float("nan")}, "not a finite number"),
        ("api", "alert-1", {"score": np.float32(0.5)}, "float32 is not allowed"),
        ("api", "alert-1", {1: "one"}, "key 1 is not a string"),
        ("api", "alert-1", ["not", "a", "mapping"], "must be a mapping"),
        ("", "alert-1", {}, "actor must be a non-empty string"),
        ("api", "alert-1\nforged line", {}, "subject must be printable"),
    ],
)
def test_details_must_be_small_json_safe_facts(tmp_path, actor, subject, details, match):
    """Checked before the database is touched, so one backend is enough."""
    with Database(tmp_path / "audit.sqlite3") as database:
        audit = AuditLog(database)
        with pytest.raises(ValueError, match=match):
            audit.record(actor, AuditAction.REQUEST, subject, details)
        assert audit.head().seq == 0


def test_reading_a_database_without_an_audit_log_is_a_clear_error(tmp_path):
    with Database(tmp_path / "empty.sqlite3") as database, pytest.raises(AuditLogError, match="holds no audit log"):
        AuditLog(database, create=False)


def test_keys_come_from_the_environment_and_must_be_long_enough():
    assert not sealer_from_env("LFR_TEST_KEY", environ={}).keyed
    assert sealer_from_env("LFR_TEST_KEY", environ={"LFR_TEST_KEY": KEY.decode()}).key_id == Sealer(KEY).key_id
    with pytest.raises(ValueError, match="LFR_TEST_KEY: the audit HMAC key has 5 bytes"):
        sealer_from_env("LFR_TEST_KEY", environ={"LFR_TEST_KEY": "short"})
    with pytest.raises(ValueError, match="requires an HMAC key and LFR_TEST_KEY is unset"):
        sealer_from_env("LFR_TEST_KEY", required=True, environ={})


def test_keys_can_come_from_an_owner_only_file(tmp_path):
    path = tmp_path / "audit.key"
    made = write_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert sealer_from_env("LFR_UNSET_VARIABLE", required=True, environ={}, key_file=path).key_id == made.key_id
    with pytest.raises(FileExistsError):
        write_key_file(path)
    path.chmod(0o644)
    with pytest.raises(ValueError, match="open to other users .*chmod 600"):
        sealer_from_env("LFR_UNSET_VARIABLE", environ={}, key_file=path)


def test_a_missing_required_key_says_how_to_make_one(monkeypatch):
    monkeypatch.delenv("LFR_AUDIT_HMAC_KEY")
    with pytest.raises(ValueError, match=r"LFR_AUDIT_HMAC_KEY is unset: generate one with `openssl rand -hex 32`"):
        configured_sealer(AuditConfig(hmac_key_file=None))
    assert AuditConfig().require_hmac_key, "the key is required unless a configuration says otherwise"


def test_anchor_text_round_trips_and_bad_text_is_refused():
    anchor = AuditAnchor(42, "ab" * 32)
    assert AuditAnchor.parse(str(anchor)) == anchor
    with pytest.raises(ValueError, match="expected SEQ:HASH"):
        AuditAnchor.parse("42:not-hex")


# --- the CLI -------------------------------------------------------------------------------------


def lfr_audit(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lfr")
    audit_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *argv])
    return args.handler(args, LfrConfig())


@pytest.fixture
def audit_file(tmp_path):
    """A log written as the product writes one: the session's key, anchors beside the database."""
    path = tmp_path / "lfr.sqlite3"
    with Database(path) as database:
        anchors = AnchorFile(default_anchor_path(str(path)))
        log = AuditLog(database, TEST_SEALER, clock=TickingClock(), anchors=anchors)
        write_chain(log)
        log.close()
    return path


def test_cli_verify_prints_the_anchor_and_checks_it_later(audit_file, capsys):
    assert lfr_audit("verify", "--db", str(audit_file)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {ENTRIES} entries verified")
    anchor = out.split("anchor: ")[1].split()[0]
    assert lfr_audit("verify", "--db", str(audit_file), "--anchor", anchor) == 0
    assert lfr_audit("verify", "--db", f"sqlite:///{audit_file}", "--anchor", f"{ENTRIES + 1}:{'0' * 64}") == 1
    assert f"FAILED at entry {ENTRIES + 1} (truncated)" in capsys.readouterr().out


def test_cli_verify_names_the_first_bad_entry(audit_file, capsys):
    with Database(audit_file) as database:
        execute(database, audit_log.update().where(audit_log.c.seq == 6).values(subject="nothing to see"))
    assert lfr_audit("verify", "--db", str(audit_file)) == 1
    last_line = capsys.readouterr().out.splitlines()[-1]
    assert last_line.startswith("FAILED at entry 6 (edited): entry 6's fields do not match its hash")


def test_cli_verify_with_a_key_from_the_environment(tmp_path, capsys, monkeypatch):
    path = tmp_path / "keyed.sqlite3"
    with Database(path) as database:
        write_chain(AuditLog(database, Sealer(KEY), clock=TickingClock()), 3)
    monkeypatch.setenv("LFR_TEST_AUDIT_KEY", KEY.decode())
    base = ["verify", "--db", str(path), "--no-anchor-file"]
    assert lfr_audit(*base, "--hmac-key-env", "LFR_TEST_AUDIT_KEY") == 0
    assert "anchor file not checked" in capsys.readouterr().out
    assert lfr_audit(*base, "--hmac-key-env", "LFR_UNSET_VARIABLE") == 2
    assert "LFR_UNSET_VARIABLE is unset: generate one with `openssl rand -hex 32`" in capsys.readouterr().err
    assert lfr_audit(*base, "--unkeyed") == 1
    assert "(wrong_key)" in capsys.readouterr().out


def test_cli_pseudonym_is_the_one_alert_entries_hold(capsys):
    assert lfr_audit("pseudonym", "Tony_Blair") == 0
    assert capsys.readouterr().out.strip() == TEST_SEALER.person_pseudonym("Tony_Blair")
    assert TEST_SEALER.person_pseudonym("Tony_Blair") != Sealer(KEY).person_pseudonym("Tony_Blair")


def test_cli_verify_a_missing_database_exits_2(tmp_path, capsys):
    assert lfr_audit("verify", "--db", str(tmp_path / "absent.sqlite3")) == 2
    assert "no SQLite database at" in capsys.readouterr().err
    assert not (tmp_path / "absent.sqlite3").exists(), "verify must never create a database"


def test_cli_show_prints_the_latest_entries(audit_file, capsys):
    assert lfr_audit("show", "--db", str(audit_file), "--limit", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["6", "7", "8"]
    assert "system:retention  purge  alerts" in lines[0]
    assert lfr_audit("show", "--db", str(audit_file), "--limit", "2", "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in document["entries"]] == [7, 8]
    assert document["entries"][1]["details"]["résumé"] == "naïve ünïcode ✓"
