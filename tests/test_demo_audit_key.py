"""`lfr demo` needs no secret store: with no audit key set it seals its log with a random key of its own,
kept owner-only in its work folder, and says so; with a key set it uses that one."""

import pytest

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.config import AuditConfig, default_anchor_path
from cluster.audit.log import AuditLog
from cluster.audit.opening import configured_sealer, open_audit_log
from cluster.audit.sealing import read_key_file
from cluster.database.config import DatabaseConfig
from cluster.demo.scenario import DEMO_KEY_FILE, demo_audit
from tests.audit_key import KEY_ENV, TEST_SEALER


def test_without_a_key_the_demo_makes_one_of_its_own(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ValueError, match="openssl rand -hex 32"):
        configured_sealer(AuditConfig())
    said: list[str] = []
    audit = demo_audit(AuditConfig(), tmp_path, said.append)
    key_file = tmp_path / DEMO_KEY_FILE
    assert audit.hmac_key_file == key_file and key_file.stat().st_mode & 0o777 == 0o600
    assert said == [
        f"{KEY_ENV} is unset: sealing the demo's audit log with a new random key kept in {key_file} (mode 0600)"
    ]

    database = DatabaseConfig(url=str(tmp_path / "alerts.sqlite3"))
    log = open_audit_log(database, audit)
    log.record("cli:lfr-demo", AuditAction.DEPLOYMENT_STARTED, "deployment:demo", {})
    log.close()
    sealer = configured_sealer(audit)
    assert sealer.keyed and sealer.key_id != TEST_SEALER.key_id
    checked = AuditLog(log.database, sealer, create=False)
    assert checked.verify(anchor_file=AnchorFile(default_anchor_path(database.url))).ok

    again = demo_audit(AuditConfig(), tmp_path, said.append)
    assert configured_sealer(again).key_id == sealer.key_id, "a kept work folder keeps its key"
    assert read_key_file(key_file) and said[-1] == f"sealing the audit log with this work folder's key in {key_file}"


def test_with_a_key_set_the_demo_uses_it(tmp_path):
    said: list[str] = []
    assert demo_audit(AuditConfig(), tmp_path, said.append) == AuditConfig()
    assert said == [] and not (tmp_path / DEMO_KEY_FILE).exists()
