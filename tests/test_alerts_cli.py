"""`lfr alerts purge` and `lfr cases purge` on a real SQLite records database: they purge, audit who ran them, and
report the alarm.

Alerts carry real face crops (lfw10). The alarm case opens a real second connection that holds a
read snapshot, as an open event stream does, so the deleted crops cannot be erased from the files.
"""

import io
import sqlite3
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
import structlog

from cluster.alerts.opening import open_alert_store
from cluster.alerts.store import AlertStore
from cluster.audit.actions import AuditAction
from cluster.cases.store import CaseStore
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.database.erasure import ErasureConfig
from cluster.logging_setup import configure_logging
from tests.api.factories import make_alert, open_case
from tests.test_watchlist_cli import Ran

DAY = 86_400.0
OFFICER = "Sgt 4455 Osei"


def lfr(config: LfrConfig, *argv: object) -> Ran:
    args = build_parser().parse_args([str(arg) for arg in argv])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args, config)
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def logging_as_lfr_does():
    """Events on stderr at warning and above, as `lfr` routes them, so stdout holds only what the command prints."""
    before = structlog.get_config()
    configure_logging("warning")
    yield
    structlog.configure(**before)


@pytest.fixture
def config(tmp_path) -> LfrConfig:
    quick = ErasureConfig(attempts=2, wait_for_readers_s=0.05, initial_backoff_s=0.01, max_backoff_s=0.02)
    return LfrConfig(database=DatabaseConfig(url=str(tmp_path / "records.sqlite3"), erasure=quick))


@pytest.fixture
def store(config) -> AlertStore:
    store = open_alert_store(config.database, config.audit)
    now = time.time()
    store.save(make_alert("expired", created_at=now - 40 * DAY))
    store.save(make_alert("expired-held", created_at=now - 40 * DAY))
    store.hold("expired-held", OFFICER, "operation Bramble")
    store.save(make_alert("recent", created_at=now - 2 * DAY))
    return store


def test_purge_deletes_expired_alerts_keeps_held_ones_and_is_audited(config, store):
    start = store.audit.head().seq
    ran = lfr(config, "alerts", "purge", "--officer", OFFICER)
    assert ran.code == 0, ran.err
    assert ran.out.startswith("purged 1 alert raised before ")
    assert "1 sightings, 1 crops, 0 decisions; 1 held alert kept" in ran.out
    assert sorted(a.alert_id for a in store.list().alerts) == ["expired-held", "recent"]
    entry, rejections = store.audit.entries(start)
    assert (entry.action, entry.subject, entry.actor) == (AuditAction.PURGE, "alerts", OFFICER)
    assert (rejections.action, rejections.subject, rejections.actor) == (AuditAction.PURGE, "rejections", OFFICER)
    assert entry.details["alert_ids"] == ["expired"]

    shorter = lfr(config, "alerts", "purge", "--older-than-days", "1")
    assert shorter.code == 0 and shorter.out.startswith("purged 1 alert ")
    assert store.audit.entries(entry.seq)[-1].actor.startswith("cli:")
    assert [a.alert_id for a in store.list().alerts] == ["expired-held"]


def test_purge_says_when_deleted_crops_may_still_be_on_disk(config, store):
    reader = sqlite3.connect(config.database.url, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sightings").fetchone()
        blocked = lfr(config, "alerts", "purge")
    finally:
        reader.close()
    assert blocked.code == 1 and blocked.out.startswith("purged 1 alert ")
    assert "the deleted crops may still be on disk: a reader holds a snapshot" in blocked.err
    again = lfr(config, "alerts", "purge")
    assert again.code == 0 and again.out.startswith("purged 0 alerts ") and again.err == ""


@pytest.mark.parametrize("days", ["0", "32", "-3"])
def test_a_retention_beyond_policy_is_refused(config, store, days):
    ran = lfr(config, "alerts", "purge", "--older-than-days", days)
    assert ran.code == 2 and "--older-than-days must be within (0, 31]" in ran.err
    assert store.count() == 3


def test_cases_purge_deletes_expired_cases_with_their_reports_keeps_held_ones_and_is_audited(config, store, tmp_path):
    cases = CaseStore(store.database, store.audit)
    now = time.time()
    report = tmp_path / "report.html"
    report.write_text("<img src='data:image/jpeg;base64,...'>")
    expired = open_case(cases, "expired", at=now - 40 * DAY, reports=(str(report),))
    open_case(cases, "expired-held", at=now - 40 * DAY)
    cases.hold("expired-held", OFFICER, "Op Falcon trial")
    open_case(cases, "recent", at=now - 2 * DAY)
    start = store.audit.head().seq

    ran = lfr(config, "cases", "purge", "--officer", OFFICER)
    assert ran.code == 0, ran.err
    assert ran.out.startswith("purged 1 case opened before ")
    assert f"{len(expired.items)} candidates, {len(expired.items)} crops, 1 report files; 1 held case kept" in ran.out
    assert [case.case_id for case in cases.list()] == ["recent", "expired-held"]
    assert not report.exists(), "the report embeds the case's crops, so it goes with the case"
    (entry,) = store.audit.entries(start)
    assert (entry.action, entry.subject, entry.actor) == (AuditAction.PURGE, "cases", OFFICER)
    assert entry.details["case_ids"] == ["expired"] and entry.details["held_kept"] == 1

    shorter = lfr(config, "cases", "purge", "--older-than-days", "1")
    assert shorter.code == 0 and shorter.out.startswith("purged 1 case ")
    assert lfr(config, "cases", "purge", "--older-than-days", "40").code == 2
