"""`lfr cameras run` as an operator runs it: a process with its own Ray cluster, driven by other processes.

It starts the configured cameras, picks up an edited config file and SIGHUP, serves
`lfr cameras add/list/remove` from other processes (`--address`), and stops cleanly on Ctrl-C.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from loadtest.counter_video import write_counter_video
from tests.waiting import scaled

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CAMERA_YAML = """  - id: {id}
    source: {source}
    loop: true
    signage_notice: Live facial recognition in use (test)
"""


def cameras_yaml(video: Path, *ids: str) -> str:
    """A configuration of these cameras, its records database beside the video."""
    database = f"database: {{url: {video.parent / 'lfr.sqlite3'}}}\n"
    return database + "cameras:\n" + "".join(CAMERA_YAML.format(id=i, source=video) for i in ids)


def lfr(*argv: str) -> subprocess.CompletedProcess:
    """`lfr` in its own process; with an explicit --address, Ray sends its token only when told to."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=scaled(90),
        cwd=REPO,
        env=env,
    )


class Output:
    """Collects a process's stdout lines in a thread, so the test can wait for one without blocking."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float, after: int = 0) -> re.Match:
        """The first line from `after` on that matches; fails after `timeout_s`, stretched by the machine's load."""
        budget_s = scaled(timeout_s)
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.1)
        pytest.fail(f"no line matching {pattern!r} within {budget_s:.0f} s; output ends with {self.lines[-15:]}")


def test_run_reloads_serves_the_cli_and_stops_cleanly(tmp_path, ray_agent_port):
    video = write_counter_video(tmp_path / "counter.mp4", seconds=2, fps=25)
    config = tmp_path / "cameras.yaml"
    config.write_text(cameras_yaml(video, "cam_a", "cam_b"))
    # Its log goes to a file: a pipe nobody reads until the end would fill and block the process.
    stderr_log = tmp_path / "cameras-run.stderr"
    with stderr_log.open("w") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "cluster.cli.main", "cameras", "run", "--config", str(config), "--refresh", "0.5"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
        )
    output = Output(run)
    try:
        port = output.wait_for(r"^Ray at [\d.]+:(\d+); cameras from", 60).group(1)
        address = f"127.0.0.1:{port}"
        output.wait_for(r"config loaded: added cam_a, cam_b", 10)
        output.wait_for(r"^cam_a\s+streaming", 20)
        output.wait_for(r"^cam_b\s+streaming", 20)

        mark = len(output.lines)
        config.write_text(cameras_yaml(video, "cam_a", "cam_b", "cam_c"))
        output.wait_for(r"config loaded: added cam_c$", 10, after=mark)

        mark = len(output.lines)
        config.write_text("cameras:\n  - {id: broken}\n")
        output.wait_for(r"kept the running cameras: invalid configuration .*cameras\.0\.source", 10, after=mark)

        config.write_text(cameras_yaml(video, "cam_a", "cam_c"))
        run.send_signal(signal.SIGHUP)
        output.wait_for(r"config loaded: removed cam_b$", 10, after=mark)

        added = lfr(
            "--config",
            str(config),
            "cameras",
            "add",
            "cli_cam",
            str(video),
            "--loop",
            "--signage",
            "LFR in use",
            "--address",
            address,
        )
        assert added.returncode == 0, added.stderr
        listed = lfr("cameras", "list", "--json", "--address", address)
        assert listed.returncode == 0, listed.stderr
        cameras = {c["camera_id"]: c for c in json.loads(listed.stdout)["cameras"]}
        assert set(cameras) == {"cam_a", "cam_c", "cli_cam"}
        assert cameras["cam_a"]["managed_by_config"] and not cameras["cli_cam"]["managed_by_config"]
        assert cameras["cam_a"]["health"]["state"] == "streaming"
        removed = lfr("--config", str(config), "cameras", "remove", "cam_a", "--address", address)
        assert removed.returncode == 0 and removed.stdout == "removed camera cam_a\n", removed.stderr
        output.wait_for(r"2 streaming", 10, after=len(output.lines))

        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=scaled(30)) == 0, stderr_log.read_text()[-3000:]
        output.wait_for(r"^stopping the cameras$", 5)
        changes = [
            (entry.subject, entry.details["change"], entry.details.get("added"), entry.details.get("removed"))
            for entry in AuditLog(Database(tmp_path / "lfr.sqlite3")).entries()
            if entry.action is AuditAction.CONFIG_CHANGE
        ]
        assert changes == [
            ("cameras", "started", ["cam_a", "cam_b"], []),
            ("cameras", "reloaded", ["cam_c"], []),
            ("cameras", "reloaded", [], ["cam_b"]),
            ("camera:cli_cam", "added", None, None),
            ("camera:cam_a", "removed", None, None),
            ("cameras", "stopped", [], ["cam_c", "cli_cam"]),
        ], "every camera change is audited, with who and what"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)


def test_run_without_a_config_file_says_what_to_give(tmp_path):
    result = lfr("cameras", "run")
    assert result.returncode == 2
    assert "lfr cameras run --config FILE" in result.stderr
