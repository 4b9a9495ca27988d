"""The deployment records behind the public records: written by `lfr serve record-deployment` (and by `lfr serve`
and `lfr run` as they start), replaced when the terms change, and every recording audited with what it replaced.
"""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import requests

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from cluster.deployment.purpose import Purpose
from cluster.deployment.records import DeploymentRecords, Phase
from tests.api.test_serve_cli import CLI, ROOT, START_TIMEOUT_S, STOP_TIMEOUT_S, lfr
from tests.waiting import scaled

DEPLOYMENT = """\
cameras:
  - {{id: oxford_st_2, source: rtsp://127.0.0.1:8554/a, signage_notice: LFR in use}}
deployment:
  id: oxford_st_next_week
  place: Oxford Street, London W1
  starts_at: "2031-06-14T12:00:00+01:00"
  ends_at: "2031-06-14T18:00:00+01:00"
  cameras: [oxford_st_2]
  watchlist_id: west_end_wanted
  watchlist_version: west_end_wanted@v3
  purpose: {purpose}
  signage_notice: Live facial recognition in use on Oxford Street from 12:00 to 18:00.
  authorised_by: Supt. A. Example
  reason: Wanted for serious violence.
database:
  url: {database}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "lfr.yaml"

    def write(purpose: str) -> str:
        path.write_text(DEPLOYMENT.format(purpose=purpose, database=tmp_path / "records.sqlite3"))
        return str(path)

    return write


def test_a_planned_deployment_is_recorded_replaced_when_its_terms_change_and_audited(config, tmp_path, capsys):
    assert lfr(["--config", config("wanted_for_offences"), "serve", "record-deployment"]) == 0
    assert "oxford_st_next_week: added" in capsys.readouterr().out
    assert lfr(["--config", config("wanted_for_offences"), "serve", "record-deployment"]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert lfr(["--config", config("missing_persons"), "serve", "record-deployment"]) == 0
    assert "changed" in capsys.readouterr().out

    with Database(tmp_path / "records.sqlite3") as database:
        audit = AuditLog(database)
        (record,) = DeploymentRecords(audit).all()
        assert (record.deployment_id, record.purpose, record.watchlist_version) == (
            "oxford_st_next_week",
            Purpose.MISSING_PERSONS,
            "west_end_wanted@v3",
        )
        assert record.window.starts_at == datetime(2031, 6, 14, 11, tzinfo=UTC).timestamp()
        assert record.recorded_by.startswith("cli:")
        assert record.phase(record.window.starts_at - 1) == Phase.PLANNED
        assert record.phase(record.window.starts_at) == Phase.ACTIVE
        assert record.phase(record.window.ends_at) == Phase.PAST
        changes = [e for e in audit.latest(10) if e.action == AuditAction.CONFIG_CHANGE]
        assert [(e.subject, e.details["change"]) for e in changes] == [
            ("deployment:oxford_st_next_week", "deployment_recorded"),
            ("deployment:oxford_st_next_week", "deployment_record_changed"),
        ]
        assert changes[1].details["replaced"] == {"purpose": "wanted_for_offences"}
        assert changes[1].details["purpose"] == "missing_persons"
        assert "authorised_by" not in changes[0].details, "the record holds the public terms only"


def test_record_deployment_says_what_is_missing(tmp_path, capsys):
    path = tmp_path / "lfr.yaml"
    path.write_text(f"database:\n  url: {tmp_path / 'records.sqlite3'}\n")
    assert lfr(["--config", str(path), "serve", "record-deployment"]) == 2
    assert "no `deployment:` section" in capsys.readouterr().err


@pytest.mark.slow
def test_lfr_serve_records_its_deployment_and_serves_the_public_records_without_a_key(config):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "--config", config("court_order_conditions"), "serve", "--port", "0"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("control room on http://127.0.0.1:"), line + server.stderr.read()
        url = line.split()[3].rstrip("/")
        answer = requests.get(url + "/public/deployments", timeout=scaled(START_TIMEOUT_S))
        assert answer.status_code == 200 and answer.headers["etag"]
        (record,) = answer.json()["deployments"]
        assert (record["deployment_id"], record["phase"], record["purpose"]) == (
            "oxford_st_next_week",
            "planned",
            "court_order_conditions",
        )
        assert "Supt. A. Example" not in answer.text and "Wanted for serious violence" not in answer.text
        page = requests.get(url + "/public/", timeout=5)
        assert page.status_code == 200 and "Oxford Street, London W1" in page.text
        assert requests.get(url + "/alerts", timeout=5).status_code == 401
        server.send_signal(signal.SIGINT)
        assert server.wait(scaled(STOP_TIMEOUT_S)) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(STOP_TIMEOUT_S)
        server.stdout.close()
        server.stderr.close()
