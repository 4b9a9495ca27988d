"""loadtest/gpu_density.py --smoke on the CPU: the GPU density script is known to run before a GPU is lent.

It runs as its own process (it starts and stops its own Ray), on two 320x180 cameras: decoding with the
software decoder and NVDEC's fall-back, the detector's batch sweep eager and traced by torch.compile (whose
faces must match eager's), and a two-step camera ramp through the real face service.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SMOKE_TIMEOUT_S = 300


def test_smoke_mode_runs_every_part_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "density.json"
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO)
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.gpu_density", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())

    software, nvdec = report["decoding"]
    assert software["frames_per_s"] > 0 and software["cameras_at_full_rate"] > 0
    assert nvdec["decoder"] == "h264_cuvid"
    assert nvdec["frames_per_s"] is None and nvdec["note"], "without a GPU NVDEC must fall back with a reason"

    points = {(p["batch"], p["compiled"]) for p in report["detector"]}
    assert points == {(1, None), (2, None), (1, "eager"), (2, "eager")}
    assert all(p["ms_per_frame"] > 0 for p in report["detector"])
    agreement = report["agreement"]
    assert agreement["same_faces"] and agreement["unmatched"] == 0 and agreement["frames"] > 0

    steps = report["ramp"]
    assert [step["cameras"] for step in steps][:1] == [1]
    for step in steps:
        assert step["sent"] > 0 and step["failed"] == 0
        assert 0 < step["latency_p50_s"] <= step["latency_p99_s"]
    assert report["cameras_held"] in (0, 1, 2)
    assert "largest camera count with p99" in done.stdout
