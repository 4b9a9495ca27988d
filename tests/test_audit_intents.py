"""Intent before, outcome after: on a real SQLite audit log, a change that ends, fails or never returns.

The "change" here is a plain function standing in for a gallery write (the gallery suites run
the real ones); what is under test is what the audit log holds around it, and what an auditor
can find afterwards: the intents with no outcome.
"""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.application.audited import AuditedOperation, audited_change
from cluster.audit.actions import AuditAction
from cluster.audit.bounded import name_summary
from cluster.audit.entry import MAX_DETAILS_CHARS, details_text
from cluster.audit.intents import unfinished_intents
from cluster.audit.log import AuditLog
from cluster.database.engine import Database

ROOT = Path(__file__).resolve().parents[1]
OFFICER = "DS Patel"
SUBJECT = "watchlist:west_end"


@pytest.fixture
def audit(tmp_path):
    with Database(tmp_path / "audit.sqlite3") as database:
        yield AuditLog(database)


def test_a_change_is_preceded_by_its_intent_and_followed_by_its_outcome(audit):
    seen_before_the_change = []

    def change() -> int:
        seen_before_the_change.extend(audit.entries())
        return 2

    result = audited_change(
        audit,
        OFFICER,
        AuditAction.WATCHLIST_CHANGE,
        SUBJECT,
        change,
        lambda deleted: {"entries_deleted": deleted},
        intent={"change": "remove_person", "person_id": "p-1"},
    )
    assert result == 2
    (intent,) = seen_before_the_change
    assert intent.details["phase"] == "intent" and intent.details["person_id"] == "p-1"
    intent_again, outcome = audit.entries()
    assert intent_again == intent
    assert outcome.details == {
        "entries_deleted": 2,
        "phase": "outcome",
        "operation": intent.details["operation"],
        "result": "done",
    }
    assert (outcome.actor, outcome.action, outcome.subject) == (OFFICER, AuditAction.WATCHLIST_CHANGE, SUBJECT)
    assert unfinished_intents(audit) == []


def test_a_failed_change_records_its_error_as_the_outcome(audit):
    def change() -> int:
        raise ConnectionError("Milvus went away\nsecond line")

    with pytest.raises(ConnectionError, match="Milvus went away"):
        audited_change(audit, OFFICER, AuditAction.ENROLMENT, SUBJECT, change, lambda r: {}, intent={"entries": 3})
    intent, outcome = audit.entries()
    assert (outcome.details["result"], outcome.details["error"]) == ("failed", "Milvus went away")
    assert outcome.details["operation"] == intent.details["operation"]
    assert unfinished_intents(audit) == []


def test_no_change_runs_when_its_intent_cannot_be_written(audit, tmp_path):
    with sqlite3.connect(tmp_path / "audit.sqlite3") as database:
        database.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END"
        )
    ran = []
    with pytest.raises(Exception, match="audit log is read-only"):
        audited_change(audit, OFFICER, AuditAction.ENROLMENT, SUBJECT, lambda: ran.append(1), lambda r: {})
    assert ran == [] and audit.entries() == []


def test_an_outcome_that_cannot_be_written_leaves_the_intent_unfinished(audit, tmp_path):
    operation = AuditedOperation(audit, OFFICER, AuditAction.ENROLMENT, "social_media", {"manifest": "posts.jsonl"})
    with sqlite3.connect(tmp_path / "audit.sqlite3") as database:
        database.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END"
        )
    assert operation.failed(RuntimeError("disk full")) is None, "failed() never raises over the caller's error"
    assert unfinished_intents(audit) == [operation.intent]


def test_a_process_killed_mid_change_leaves_an_intent_an_auditor_finds(audit, tmp_path):
    """A real process records an intent, starts its change and is killed (os._exit) before the outcome."""
    finished = AuditedOperation(audit, OFFICER, AuditAction.PURGE, "watchlist entries", {"change": "purge"})
    finished.done({"entries_deleted": 0})
    script = (
        "import os, sys; from cluster.application.audited import AuditedOperation;"
        " from cluster.audit.actions import AuditAction; from cluster.audit.log import AuditLog;"
        " from cluster.database.engine import Database;"
        " AuditedOperation(AuditLog(Database(sys.argv[1])), 'DS Patel', AuditAction.ENROLMENT, 'social_media',"
        " {'manifest': 'posts.jsonl', 'reason': 'an \"phase\":\"outcome\" in free text is only text'});"
        " os._exit(9)"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "audit.sqlite3")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 9, killed.stderr
    (left,) = unfinished_intents(audit)
    assert (left.actor, left.action, left.subject) == (OFFICER, AuditAction.ENROLMENT, "social_media")
    assert left.details["manifest"] == "posts.jsonl" and left.details["phase"] == "intent"
    assert audit.verify().ok


def test_a_search_of_a_huge_archive_fits_one_entry():
    """Listing every source of 40,000 files passes the entry limit, so such a search could never be audited."""
    sources = [
        f"/evidence/operation-bramble/cctv/camera-{n % 97:03d}/{n:08d}-" + "x" * 90 + ".mp4" for n in range(40_000)
    ]
    with pytest.raises(ValueError, match="keep them under"):
        details_text({"sources": sources})
    summary = name_summary(sources)
    assert len(details_text({"sources": summary})) < 1_000 < MAX_DETAILS_CHARS
    assert summary["count"] == 40_000 and summary["first"] == sources[:3]
    assert summary != name_summary(sources[:-1]) and summary != name_summary(list(reversed(sources)))
