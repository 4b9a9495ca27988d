"""The deployment records behind the public records: written by `lfr serve record-deployment` (and by `lfr serve`
and `lfr run` as they start), replaced when the terms change, and every recording audited with what it replaced.
"""

from datetime import UTC, datetime

import pytest

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from cluster.deployment.purpose import Purpose
from cluster.deployment.records import DeploymentRecords, Phase
from tests.api.test_serve_cli import lfr

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
