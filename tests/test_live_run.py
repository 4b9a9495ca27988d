"""`lfr run` with a deployment, as an operator runs it: its status reaches the control room's API.

A recorded crowd on two cameras, a watchlist enrolled and frozen through the audited service,
a configuration file naming the cameras and the deployment; `lfr run` runs in its own process
while the control-room API (the app `lfr serve` serves) reads the status board from the same
database: the deployment, each camera's health and the faces seen. Afterwards the audit log
holds the deployment's start and stop with its authorisation, threshold and watchlist digest.
A watchlist version whose rows were changed in Milvus after freezing is refused before anything starts.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cluster.alerts.opening import open_alert_store
from cluster.api.app import create_app
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.audit.actions import AuditAction
from cluster.config import LfrConfig
from cluster.gallery.schema import VECTOR_FIELD, WATCHLIST_COLLECTION, WATCHLIST_FIELDS
from tests.live_deployment import stop_gallery, write_deployment
from tests.records import opened_gallery

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SECONDS = 12.0
RUN_S = 40.0
"""How long `lfr run` runs: Ray's start, the face service's start, then the crowd's seconds."""


@pytest.fixture
def deployment_config(tmp_path, crowds) -> tuple[Path, LfrConfig]:
    path, config = write_deployment(tmp_path, SECONDS, crowds)
    yield path, config
    stop_gallery(config)


def test_lfr_run_publishes_the_deployment_status_for_the_control_room(deployment_config, tmp_path):
    path, config = deployment_config
    store = open_alert_store(config.database, config.audit)
    (tmp_path / "photos").mkdir()
    services = ControlRoomServices.over(store, FolderWatchlistPhotos(tmp_path / "photos"))
    key = services.keys.add_user("duty-officer", "operator", actor="test").token
    server = ApiServer(create_app(services), "127.0.0.1", 0).start()
    run = subprocess.Popen(
        [sys.executable, "-m", "cluster.cli.main", "--config", str(path), "run", "--duration", str(RUN_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    seen: dict = {}
    try:
        deadline = time.monotonic() + RUN_S + 120
        while run.poll() is None and time.monotonic() < deadline:
            answer = requests.get(
                f"{server.url}/deployments/demo", headers={"Authorization": f"Bearer {key}"}, timeout=10
            )
            if answer.status_code == 200:
                seen = answer.json()
                if seen["faces_seen"] > 0 and {c["camera_id"] for c in seen["cameras"]} == {"cam0", "cam1"}:
                    break
            time.sleep(0.5)
        if not seen and run.poll() is not None:
            out, err = run.communicate()
            pytest.fail(f"lfr run ended before the control room saw its status:\n{out[-2000:]}\n{err[-3000:]}")
        assert seen, "the control room never saw the deployment's status"
        assert seen["faces_seen"] > 0, seen
        assert {c["camera_id"] for c in seen["cameras"]} == {"cam0", "cam1"}, seen["cameras"]
        assert all(c["state"] in ("streaming", "connecting", "stopped") for c in seen["cameras"]), seen["cameras"]
        assert seen["place"] == config.deployment.place
        assert seen["watchlist_version"] == config.deployment.watchlist_version
        assert seen["target_fpir"] == pytest.approx(1e-2)
        out, err = run.communicate(timeout=RUN_S + 120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(30)
        server.stop()
    assert run.returncode == 0, err[-3000:]
    assert "faces seen" in out and "deployment demo:" in out, out[-3000:]

    recorded, *entries = [e for e in store.audit.entries() if e.subject == "deployment:demo"]
    assert (recorded.action, recorded.details["change"]) == (AuditAction.CONFIG_CHANGE, "deployment_recorded")
    assert [e.action for e in entries] == [AuditAction.DEPLOYMENT_STARTED, AuditAction.DEPLOYMENT_STOPPED]
    started = entries[0].details
    assert started["watchlist_version"] == config.deployment.watchlist_version
    assert started["authorised_by"] == config.deployment.authorised_by
    assert started["threshold"] > 0 and len(started["watchlist_digest"]) == 64
    assert entries[1].details["faces_seen"] >= seen["faces_seen"], "the final count covers what was published"


def test_lfr_run_refuses_a_watchlist_version_changed_in_milvus_after_freezing(deployment_config, tmp_path):
    """A row planted in the frozen batch straight in Milvus: `lfr run` refuses before it starts Ray or a camera."""
    path, config = deployment_config
    with opened_gallery(config) as gallery:
        version = gallery.watchlists.version(config.deployment.watchlist_version)
        first = gallery.watchlists.entries(version.watchlist_id)[0]
        fields = [*WATCHLIST_FIELDS, VECTOR_FIELD]
        (row,) = gallery.connection.run(
            WATCHLIST_COLLECTION,
            "read a row",
            lambda client: client.query(
                WATCHLIST_COLLECTION, filter=f'entry_id == "{first.entry_id}"', output_fields=fields
            ),
        )
        planted = {**row, "entry_id": "planted", "person_id": "someone-else"}
        gallery.connection.run(
            WATCHLIST_COLLECTION, "plant", lambda client: client.insert(WATCHLIST_COLLECTION, [planted])
        )
    run = subprocess.run(
        [sys.executable, "-m", "cluster.cli.main", "--config", str(path), "run", "--duration", str(RUN_S)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"watchlist {version.version_id} changed since it was frozen: 0 changed, 1 added (planted)" in run.stderr
    assert "ray_started" not in run.stderr
    store = open_alert_store(config.database, config.audit)
    assert not [e for e in store.audit.entries() if e.subject == "deployment:demo"], "no deployment started"
