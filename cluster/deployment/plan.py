"""A deployment's matching plan: what a live run matches against, and when, and the threshold in force.

Plain logic (no Ray): the live run builds the plan from the configuration, and the actors
that match faces receive it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cluster.cameras.config import CameraConfig
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.window import DeploymentWindow
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.config import MatchingConfig


class PlannedSections(Protocol):
    """The configuration sections a plan is made of; `cluster.config.LfrConfig` has them.

    Named by what is read rather than by `LfrConfig`, because `cluster.config` imports this
    package's section: importing it back would tie the two packages in a cycle.
    """

    @property
    def deployment(self) -> DeploymentConfig | None: ...

    @property
    def cameras(self) -> Sequence[CameraConfig]: ...

    @property
    def matching(self) -> MatchingConfig: ...


@dataclass(frozen=True)
class MatchingPlan:
    """What a live deployment matches against, and when; target_fpir is the false-alert rate it states."""

    deployment_id: str
    watchlist_version: str
    target_fpir: float
    window: DeploymentWindow
    cameras: tuple[CameraConfig, ...]


def threshold_in_force(plan: MatchingPlan, calibration: CalibratedThreshold | None) -> CalibratedThreshold:
    """The version's calibrated threshold, if it was calibrated for the rate the deployment states.

    A version frozen before calibration, or for another rate, is refused with what to do: a
    deployment never runs at a threshold nobody computed for its stated rate and list.
    """
    if calibration is None:
        raise ValueError(
            f"watchlist version {plan.watchlist_version} has no calibrated threshold (frozen before calibration);"
            f" run `lfr watchlist freeze {plan.watchlist_version.split('@')[0]} --target-fpir {plan.target_fpir:g}`"
            " and bind the deployment to the new version"
        )
    if abs(calibration.target_fpir - plan.target_fpir) > 1e-9 * max(1.0, plan.target_fpir):
        raise ValueError(
            f"deployment {plan.deployment_id} states FPIR {plan.target_fpir:g} but watchlist version"
            f" {plan.watchlist_version} was calibrated for {calibration.target_fpir:g}; freeze the watchlist with"
            f" --target-fpir {plan.target_fpir:g} and bind the deployment to that version"
        )
    return calibration


def plan_from_config(config: PlannedSections) -> MatchingPlan:
    """The matching plan of the configured deployment (its cameras, watchlist version, threshold, window)."""
    deployment = config.deployment
    if deployment is None:
        raise ValueError("no deployment in the configuration: add a `deployment:` section to match faces")
    cameras = tuple(camera for camera in config.cameras if camera.id in deployment.cameras)
    return MatchingPlan(
        deployment_id=deployment.id,
        watchlist_version=deployment.watchlist_version,
        target_fpir=deployment.stated_fpir(config.matching.target_fpir),
        window=deployment.window,
        cameras=cameras,
    )
