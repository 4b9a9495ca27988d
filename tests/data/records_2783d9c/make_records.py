"""Writes a records database with the code of commit 2783d9c (before issue 14), for tests/test_migrations.py.

Run from a copy of that commit, not from this tree:

    mkdir /tmp/old && git archive 2783d9c cluster tests | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/records_2783d9c/make_records.py tests/data/records_2783d9c/records.sql

It writes alerts with crops and embeddings, adjudications, a hold, a purge, users and API keys
(one revoked) and a status board snapshot, every change audited and sealed with the tests' HMAC
key, then dumps the SQLite database as SQL text (`records.sql`).
"""

import sqlite3
import sys
import tempfile
from pathlib import Path

from cluster.alerts.model import AlertState
from cluster.alerts.store import AlertStore
from cluster.api.keys import ApiKeys
from cluster.audit.log import AuditLog
from cluster.audit.sealing import Sealer
from cluster.cameras.health import CameraHealth, CameraState
from cluster.database.engine import Database
from cluster.deployment.window import DeploymentWindow
from cluster.live.status_board import DeploymentStatus, StatusBoard
from tests.test_alert_store import T0, make_alert, make_sighting

TEST_AUDIT_KEY = "lfr-test-session-audit-key-0123456789abcdef"


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "old.sqlite3"
        with Database(path) as database:
            audit = AuditLog(database, Sealer(TEST_AUDIT_KEY.encode()), clock=lambda: T0 + 100)
            store = AlertStore(database, audit, clock=lambda: T0 + 200)
            for number in range(1, 6):
                sightings = (
                    make_sighting(f"oxford_st_2:{number}", person_id=f"person-{number}"),
                    make_sighting(f"regent_st_1:{number}", camera_id="regent_st_1", person_id=f"person-{number}"),
                )
                store.save(
                    make_alert(f"alert-{number}", sightings, person_id=f"person-{number}", created_at=T0 + number)
                )
            store.transition("alert-1", AlertState.ACKNOWLEDGED, "PC 1234 Khan", at=T0 + 10)
            store.transition("alert-1", AlertState.CONFIRMED, "PC 1234 Khan", "matched in person", at=T0 + 11)
            store.transition("alert-2", AlertState.REJECTED, "PC 5678 Ode", "different person", at=T0 + 12)
            store.hold("alert-3", "Sgt 9 Lee", "complaint received", at=T0 + 13)
            keys = ApiKeys(audit, clock=lambda: T0 + 300)
            keys.add_user("pc.khan", "operator", actor="cli:admin")
            keys.add_user("sgt.lee", "supervisor", actor="cli:admin")
            keys.issue_key("pc.khan", actor="cli:admin")
            keys.revoke("sgt.lee", actor="cli:admin")
            window = DeploymentWindow(starts_at=T0, ends_at=T0 + 8 * 3600)
            camera = CameraHealth(
                camera_id="oxford_st_2",
                state=CameraState.STREAMING,
                since=T0,
                fps_in=25.0,
                fps_out=5.0,
                frames_decoded=9000,
                frames_sampled=1800,
                frames_dropped=3,
                frames_corrupt=0,
                queue_length=1,
                reconnects=1,
                failures=1,
                last_error=None,
                last_error_time=None,
                last_frame_time=T0 + 399,
            )
            StatusBoard(database).publish(
                DeploymentStatus(
                    deployment_id="west_end",
                    place="Oxford Circus",
                    window=window,
                    watchlist_id="west_end_wanted",
                    watchlist_version="west_end_wanted@1",
                    threshold=0.92,
                    model="dlib_resnet_v1",
                    faces_seen=1234,
                    non_match_deletions=1200,
                    alerts=5,
                    cameras=(camera,),
                    published_at=T0 + 400,
                )
            )
        connection = sqlite3.connect(path)
        out.write_text("\n".join(connection.iterdump()) + "\n")
        connection.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
