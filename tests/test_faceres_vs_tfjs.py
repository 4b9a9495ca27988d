"""faceres against @tensorflow/tfjs itself: same chips in, same 1024-d `global_pooling/Mean` out.

The oracle is tfjs's pure-JavaScript CPU backend running the vendored model files in node
(`tests/oracle/faceres_tfjs.js`, pinned by `tests/oracle/package-lock.json`), on real lfw10 faces
cut by our MTCNN and ArcFace aligner. It does its own preprocessing from the uint8 RGB chips, so
the channel order and means are compared as well as the network, including TF's asymmetric
'SAME' padding in the stride-2 layers. On a clean checkout the test installs the oracle with
`npm ci` first (about 10 s; the npm registry must be reachable); tfjs then takes about 2 s a chip.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cluster.vision.faceres import EMBEDDING_SIZE, MODEL_DIR, MODEL_FILE, FaceresEmbedder
from tests.faceres_faces import lfw10_arcface_chips

pytestmark = pytest.mark.slow

ORACLE = Path(__file__).resolve().parent / "oracle"
MAX_ABS_DIFF = 1e-4
NODE_HINT = "install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)"


def _installed_oracle() -> str:
    """The node executable, after `npm ci` in tests/oracle if its node_modules are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: the faceres oracle runs @tensorflow/tfjs in Node.js; {NODE_HINT}")
    if not (ORACLE / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm is not on PATH, and {ORACLE}/node_modules is missing; {NODE_HINT}")
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        result = subprocess.run(command, cwd=ORACLE, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.fail(
                f"`npm ci` in {ORACLE} failed (exit {result.returncode}); it needs the npm registry:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
    return node


@pytest.fixture(scope="module")
def chips(face_pipeline) -> np.ndarray:
    """One photo of each of the 10 lfw10 people, aligned for faceres."""
    return lfw10_arcface_chips(face_pipeline.detector, per_person=1)[0]


@pytest.fixture(scope="module")
def tfjs_descriptors(chips: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    node = _installed_oracle()
    folder = tmp_path_factory.mktemp("faceres_tfjs")
    chips_path, output_path = folder / "chips.u8", folder / "descriptors.f32"
    chips.tofile(chips_path)
    command = [node, "faceres_tfjs.js", str(MODEL_DIR / MODEL_FILE), str(chips_path), str(len(chips)), str(output_path)]
    result = subprocess.run(command, cwd=ORACLE, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"the tfjs oracle failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    return np.fromfile(output_path, dtype="<f4").reshape(len(chips), EMBEDDING_SIZE)


@pytest.mark.parametrize("channels_last", [True, False])
def test_matches_tfjs(chips: np.ndarray, tfjs_descriptors: np.ndarray, channels_last: bool) -> None:
    ours = FaceresEmbedder(channels_last=channels_last).descriptors(chips)
    assert ours.shape == tfjs_descriptors.shape == (10, EMBEDDING_SIZE)
    assert (tfjs_descriptors > 0).mean() > 0.2, "the oracle's output is mostly zeros: not a real face embedding"
    diff = float(np.abs(ours - tfjs_descriptors).max())
    assert diff <= MAX_ABS_DIFF, f"max abs difference from tfjs over {len(chips)} faces is {diff:.3g}"
