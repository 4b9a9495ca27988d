"""The alerting rules (configs/prometheus/rules.yaml) are valid and fire when, and only when, they should."""

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parent.parent / "configs" / "prometheus"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed: apt-get install -y prometheus (loadtest/debian-packages.txt)"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


def test_the_rules_are_valid():
    checked = promtool("check", "rules", "rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "6 rules found" in checked.stdout


def test_the_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "rules_test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_required_alert_has_a_rule():
    text = (RULES_DIR / "rules.yaml").read_text()
    for alert in (
        "LfrCameraDown",
        "LfrFramesDroppedRising",
        "LfrAlertLatencyOverBound",
        "LfrGalleryErrors",
        "LfrRetentionOverdue",
        "LfrAuditHeadNotAnchored",
    ):
        assert f"alert: {alert}" in text
