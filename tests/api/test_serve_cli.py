"""`lfr serve` and its user commands: keys printed once and stored as digests, loopback by default.

The commands run through a parser built as `cluster.cli.main` builds its own, so these tests do not
depend on the line that registers the group there.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from cluster.alerts.store import RETENTION_ACTOR, AlertStore
from cluster.api.keys import ApiKeys, Role
from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.config import default_anchor_path
from cluster.audit.log import AuditLog
from cluster.cli import serve_commands
from cluster.config import load_config
from cluster.database.engine import Database
from tests.api.factories import make_alert
from tests.audit_key import TEST_SEALER
from tests.waiting import scaled, wait_for

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
CLI = (
    "import sys; from tests.api.test_serve_cli import lfr; from cluster.logging_setup import configure_logging;"
    " configure_logging(); sys.exit(lfr(sys.argv[1:]))"
)


def lfr(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lfr")
    parser.add_argument("--config", type=Path, default=None)
    serve_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, load_config(args.config))


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "lfr.yaml"
    path.write_text(f"database:\n  url: {tmp_path / 'records.sqlite3'}\n")
    return path


def test_add_user_prints_the_key_once_and_it_works(config, tmp_path, capsys):
    assert lfr(["serve", "--config", str(config), "add-user", "pc.smith", "--role", "operator"]) == 0
    token, explanation = capsys.readouterr().out.splitlines()
    assert token.startswith("lfr_") and "shown this once" in explanation
    with Database(tmp_path / "records.sqlite3") as database:
        audit = AuditLog(database)
        principal = ApiKeys(audit).authenticate(token)
        assert (principal.name, principal.role) == ("pc.smith", Role.OPERATOR)
        (change,) = [e for e in audit.latest(10) if e.action == AuditAction.ACCESS_CHANGE]
        assert change.actor.startswith("cli:") and change.subject == "pc.smith"
    assert token.rsplit("_", 1)[1].encode() not in (tmp_path / "records.sqlite3").read_bytes()


def test_user_commands_say_what_went_wrong(config, capsys):
    base = ["--config", str(config), "serve"]
    assert lfr([*base, "add-user", "sgt.jones", "--role", "supervisor"]) == 0
    assert lfr([*base, "add-user", "sgt.jones", "--role", "operator"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert lfr([*base, "add-user", "Sgt Jones", "--role", "operator"]) == 2
    assert "invalid user name" in capsys.readouterr().err
    assert lfr([*base, "new-key", "pc.nobody"]) == 2
    assert "lfr serve add-user pc.nobody" in capsys.readouterr().err
    assert lfr([*base, "new-key", "sgt.jones"]) == 0
    assert lfr([*base, "revoke", "sgt.jones"]) == 0
    assert "revoked 2 keys of sgt.jones" in capsys.readouterr().out
    assert lfr([*base, "users"]) == 0
    (listed,) = capsys.readouterr().out.splitlines()
    assert listed.startswith("sgt.jones") and "supervisor" in listed and "0 active key(s)" in listed


@pytest.mark.slow
def test_serve_listens_on_loopback_by_default_and_stops_on_ctrl_c(config, tmp_path, capsys):
    lfr(["serve", "--config", str(config), "add-user", "pc.smith", "--role", "operator"])
    token = capsys.readouterr().out.splitlines()[0]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--config", str(config), "--port", "0"],
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
        page = requests.get(url + "/", timeout=scaled(START_TIMEOUT_S))
        assert page.status_code == 200 and "LFR Control Room" in page.text
        assert requests.get(url + "/alerts", timeout=5).status_code == 401
        me = requests.get(url + "/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert me.json() == {"name": "pc.smith", "role": "operator"}
        server.send_signal(signal.SIGINT)
        assert server.wait(scaled(STOP_TIMEOUT_S)) == 0
        assert server.stdout.read() == "control room stopped\n"
        assert "Traceback" not in server.stderr.read()
        records = tmp_path / "records.sqlite3"
        with Database(records) as database:
            head = AuditLog(database, TEST_SEALER, create=False).head()
        anchors = AnchorFile(default_anchor_path(str(records))).read(TEST_SEALER)
        assert head.seq > 1 and anchors[-1].record.head == head, "the server wrote down the head it stopped at"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(STOP_TIMEOUT_S)
        server.stdout.close()
        server.stderr.close()


def test_a_busy_port_is_a_clear_error(config, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert lfr(["serve", "--config", str(config), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_purges_expired_alerts_on_its_own(config, tmp_path):
    """The control room is the process that runs for as long as alerts are kept, so it enforces their retention."""
    with Database(tmp_path / "records.sqlite3") as database:
        store = AlertStore(database, AuditLog(database, TEST_SEALER))
        store.save(make_alert("expired", created_at=time.time() - 40 * 86_400))
        store.save(make_alert("recent"))
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--config", str(config), "--port", "0"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("control room on http://127.0.0.1:"), line + server.stderr.read()

        def purges() -> dict:
            """The retention purges written so far, by what they purged, once alerts and cases both were."""
            with Database(tmp_path / "records.sqlite3") as database:
                entries = AuditLog(database).entries()
            done = {e.subject: e for e in entries if e.action == AuditAction.PURGE and e.actor == RETENTION_ACTOR}
            return done if {"alerts", "cases"} <= done.keys() else {}

        purged = wait_for(purges, START_TIMEOUT_S, "the retention purge of the running control room")
        assert purged["alerts"].details["alert_ids"] == ["expired"]
        assert purged["cases"].details["cases"] == 0, "the same run purges expired cases, none here"
        with Database(tmp_path / "records.sqlite3") as database:
            assert [a.alert_id for a in AlertStore(database, AuditLog(database)).list().alerts] == ["recent"]
        server.send_signal(signal.SIGINT)
        assert server.wait(scaled(STOP_TIMEOUT_S)) == 0
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(STOP_TIMEOUT_S)
        server.stdout.close()
        server.stderr.close()


def test_keys_expire_when_the_issuer_says_and_users_shows_when(config, capsys):
    base = ["--config", str(config), "serve"]
    assert lfr([*base, "add-user", "pc.temp", "--role", "operator", "--expires-in-days", "7"]) == 0
    _token, explanation = capsys.readouterr().out.splitlines()
    until = explanation.rsplit("until ", 1)[1]
    expected = datetime.fromtimestamp(time.time() + 7 * 86_400, UTC)
    assert abs(datetime.fromisoformat(until) - expected) < timedelta(minutes=1)
    assert lfr([*base, "users"]) == 0
    assert f"1 active key(s), next expires {until}" in capsys.readouterr().out
    assert lfr([*base, "new-key", "pc.temp", "--expires-in-days", "0"]) == 2
    assert "lifetime must be 1..730 days" in capsys.readouterr().err
    assert lfr([*base, "add-user", "anonymous", "--role", "supervisor"]) == 2
    assert "reserved" in capsys.readouterr().err


def test_serve_refuses_a_trusted_proxy_that_is_not_an_address(config, capsys):
    assert lfr(["serve", "--config", str(config), "--port", "0", "--trusted-proxy", "*"]) == 2
    assert "not an IP address or network" in capsys.readouterr().err
