"""Recorded crowds rendered once a session per spec, each test given a copy of its own.

`make_crowd` renders every frame of every camera and encodes it (the longest crowds take the
better part of a minute on two cores), and what it writes depends on its spec alone
(tests/test_crowd.py checks that the same spec writes the same crowd). Several modules replay
the same crowd (the 16 s crowd of tests/test_chaos.py and tests/test_not_this_person_live.py,
the 12 s one of tests/test_live_run.py and tests/test_observed_run.py), so the session renders
each spec once and copies the folder into the test's own: what a test writes there or beside it
stays its own, and the paths it reads are the ones it would have had.
"""

import shutil
from pathlib import Path

from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.crowd.truth import CrowdTruth


class CrowdCache:
    """Crowds made under `root`, one folder per spec, copied out on request."""

    def __init__(self, root: Path):
        self.root = root
        self._made: dict[CrowdSpec, tuple[Path, CrowdTruth]] = {}

    def copy(self, spec: CrowdSpec, out_dir: Path) -> CrowdTruth:
        """The crowd of `spec` written into `out_dir`, and its truth."""
        if spec not in self._made:
            folder = self.root / f"crowd-{len(self._made)}"
            self._made[spec] = (folder, make_crowd(spec, folder))
        folder, truth = self._made[spec]
        shutil.copytree(folder, out_dir, dirs_exist_ok=True)
        return truth
