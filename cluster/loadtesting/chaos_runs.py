"""`lfr loadtest --chaos NAME`: chaos scenarios run one after another on the deployment of the ramp's last step.

Each scenario (`cluster.chaos.scenarios`) injects its fault into the running deployment, waits for
recovery and checks that nothing was lost; its figures go into report.json as `ChaosFigures`, and
one that did not recover or lost anything fails the load test as a regression does. Three
scenarios need what a load test does not run (a Milvus server, records on a disk that may be filled,
a second Ray node): they are refused before anything starts, each with where it is exercised.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from cluster.application.chaos_system import LiveChaosSystem
from cluster.application.live_run import LiveRun
from cluster.cameras.config import CameraConfig
from cluster.chaos.scenarios import (
    SCENARIOS,
    ChaosOutcome,
    ChaosScenario,
    ChaosSettings,
    Soak,
    repeatedly_sighted,
    scenario,
)
from cluster.config import LfrConfig
from cluster.crowd.truth import CrowdTruth
from cluster.demo.scenario import central_faces
from cluster.fusion.topology import CameraTopology
from cluster.replay.rtsp_server import RtspReplayServer
from cluster.vision.pipeline import FacePipeline

NOT_IN_A_LOAD_TEST = {
    "milvus-restart": "the load test keeps its watchlist in embedded milvus-lite, not a Milvus server"
    " (tests/test_chaos.py restarts a real one)",
    "disk-full": "it would fill the disk the load test's records are on (tests/test_chaos.py fills a size-limited"
    " tmpfs)",
    "worker-node": "the load test runs on one Ray node (tests/test_two_nodes.py kills a worker node)",
}
LOAD_TEST_SCENARIOS = tuple(name for name in SCENARIOS if name not in NOT_IN_A_LOAD_TEST)
MIB = 2**20


def check_chaos_names(names: Sequence[str]) -> tuple[str, ...]:
    """The names, checked; ValueError naming each one a load test cannot run and why."""
    problems = []
    for name in names:
        if name in NOT_IN_A_LOAD_TEST:
            problems.append(f"{name!r}: {NOT_IN_A_LOAD_TEST[name]}")
        elif name not in SCENARIOS:
            problems.append(f"{name!r} is no chaos scenario")
    if problems:
        raise ValueError(f"--chaos: {'; '.join(problems)}; a load test runs: {', '.join(LOAD_TEST_SCENARIOS)}")
    return tuple(names)


class ChaosFigures(BaseModel):
    """One scenario's outcome as report.json keeps it (counts, not the alerts themselves)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str
    injected: str
    fault_seen_s: float | None
    recovery_s: float | None
    alerts_before: int
    alerts_after: int
    alerts_lost: int
    sightings_lost: int
    duplicates: int
    people_expected: int
    """Watchlist people sighted repeatedly before the scenario, who must be sighted again after it."""
    people_missed: int
    audit_verifies: bool
    non_match_traces: int
    nothing_lost: bool
    soak_memory_growth_mib: dict[str, float] | None = None
    soak_latency_start_s: float | None = None
    soak_latency_end_s: float | None = None

    @classmethod
    def of(cls, outcome: ChaosOutcome, people_expected: int) -> "ChaosFigures":
        soak = outcome.soak
        return cls(
            scenario=outcome.scenario,
            injected=outcome.injected,
            fault_seen_s=outcome.fault_seen_s,
            recovery_s=outcome.recovery_s,
            alerts_before=outcome.alerts_before,
            alerts_after=outcome.alerts_after,
            alerts_lost=len(outcome.alerts_lost),
            sightings_lost=outcome.sightings_lost,
            duplicates=len(outcome.duplicates),
            people_expected=people_expected,
            people_missed=len(outcome.people_missed),
            audit_verifies=outcome.audit_verifies,
            non_match_traces=outcome.non_match_traces,
            nothing_lost=outcome.nothing_lost,
            soak_memory_growth_mib=None
            if soak is None
            else {role: growth / MIB for role, growth in soak.memory_growth_bytes.items()},
            soak_latency_start_s=None if soak is None else soak.latency_start_s,
            soak_latency_end_s=None if soak is None else soak.latency_end_s,
        )


@dataclass(frozen=True)
class PrivacyReferences:
    """The faces the privacy check looks for: the crowd's strangers, and the enrolment photos the gallery may hold."""

    strangers: np.ndarray
    enrolled: np.ndarray

    @classmethod
    def of(cls, truth: CrowdTruth, config: LfrConfig) -> "PrivacyReferences":
        """Embedded before the run, so as not to take the cores from it."""
        pipeline = FacePipeline(config.face_models)
        watchlist = {person.id for person in truth.watchlist}

        def faces(photos: Sequence[Sequence[str]]) -> np.ndarray:
            return np.stack([face.embedding for some in photos for face in central_faces(pipeline, some)])

        return cls(
            strangers=faces([p.appearance_photos for p in truth.people if p.id not in watchlist]),
            enrolled=faces([p.enrolment_photos for p in truth.watchlist]),
        )


REPEAT_SIGHTING_WAIT_S = 120.0
"""Longest the chaos waits, before its first fault, for someone to be sighted twice (a few plays of a crowd)."""


def _repeatedly_sighted_people(system: LiveChaosSystem, progress: Callable[[str], None]) -> frozenset[str]:
    """The people a scenario must see again: waits for a first one when the ramp was too short to sight anyone
    twice, and gives up (nobody expected, said in the report) after `REPEAT_SIGHTING_WAIT_S`."""
    waiting = Retrying(
        stop=stop_after_delay(REPEAT_SIGHTING_WAIT_S),
        wait=wait_fixed(2.0),
        retry=retry_if_result(lambda people: not people),
        before_sleep=lambda _: progress("chaos: waiting for a watchlist person to be sighted twice"),
    )
    try:
        return waiting(lambda: repeatedly_sighted(system.alerts()))
    except RetryError:
        progress(f"chaos: nobody was sighted twice within {REPEAT_SIGHTING_WAIT_S:g} s; no re-sighting is checked")
        return frozenset()


def run_chaos(
    names: Sequence[str],
    run: LiveRun,
    config: LfrConfig,
    cameras: Sequence[CameraConfig],
    server: RtspReplayServer,
    references: PrivacyReferences,
    scanned: Sequence[Path],
    soak_seconds: float,
    progress: Callable[[str], None],
) -> list[ChaosFigures]:
    """Each named scenario on the running deployment, in order; the people sighted repeatedly so far must be
    sighted again.

    cameras: every camera of the deployment, as the Coordinator fuses them (a duplicate is judged by its rules).
    """
    system = LiveChaosSystem(
        run=run,
        config=config,
        scanned=tuple(scanned),
        strangers=references.strangers,
        enrolled=references.enrolled,
        rtsp=server,
    )
    expected = _repeatedly_sighted_people(system, progress)
    settings = ChaosSettings(
        expected_people=expected,
        topology=CameraTopology.from_config(list(cameras)),
        fusion=config.fusion,
    )
    figures = []
    for name in names:
        chosen: ChaosScenario = Soak(seconds=soak_seconds) if name == Soak.name else scenario(name)
        progress(f"chaos {name}: {chosen.summary}")
        outcome = chosen.run(system, settings)
        figures.append(ChaosFigures.of(outcome, len(expected)))
        recovery = "not recovered" if outcome.recovery_s is None else f"recovered in {outcome.recovery_s:.1f} s"
        progress(f"chaos {name}: {recovery}, {'nothing lost' if outcome.nothing_lost else 'SOMETHING LOST'}")
    return figures
