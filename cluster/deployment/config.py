"""A deployment: the authorised use of live facial recognition at one place for one time window.

It records what the authorisation covers: the place, the window, the cameras (each showing its
signage notice), the watchlist frozen at one version, the false-alert rate it may accept (the
version's threshold was calibrated for that rate and its size), the purpose category the public
records show, who authorised it and why.
Nothing is matched outside the window, nor inside its exclusion windows: the match stage asks
`DeploymentWindow.admission` with each frame's capture time and drops the frame unless it is allowed.
A deployment at a protest or assembly says so (`assembly`), with its supervisor-level authorisation.

`DeploymentConfig` checks what it can alone; `verify_deployment` checks it against the
cameras section. Neither does any I/O.
"""

from collections.abc import Sequence
from datetime import datetime

from pydantic import AwareDatetime, Field, field_validator, model_validator

from cluster.cameras.config import CAMERA_ID_PATTERN, CameraConfig
from cluster.deployment.assembly import AssemblyAuthorisation
from cluster.deployment.exclusion import ExclusionWindowConfig
from cluster.deployment.purpose import Purpose
from cluster.deployment.window import DeploymentWindow
from cluster.matching.rate import Rate
from cluster.section import Section


class DeploymentConfig(Section):
    """One authorised deployment; see configs/deployments/west_end_demo.yaml."""

    id: str = Field(pattern=CAMERA_ID_PATTERN, max_length=64, description="Slug such as west_end_2025_06_14.")
    place: str = Field(min_length=1, description="Where, in words the public would use.")
    starts_at: AwareDatetime = Field(description="ISO 8601 with its UTC offset, e.g. 2025-06-14T10:00:00+01:00.")
    ends_at: AwareDatetime = Field(description="ISO 8601 with its UTC offset; must be after starts_at.")
    cameras: tuple[str, ...] = Field(min_length=1, description="Ids of cameras in the cameras section.")
    watchlist_id: str = Field(min_length=1, description="The watchlist authorised for this deployment.")
    watchlist_version: str = Field(min_length=1, description="Its frozen version: later edits do not apply here.")
    target_fpir: Rate | None = Field(
        None,
        gt=0.0,
        le=0.5,
        description=(
            "False alerts per passer-by not on the list this deployment accepts; default matching.target_fpir."
            " The watchlist version must have been frozen for this rate."
        ),
    )
    purpose: Purpose = Field(
        description="Whom the watchlist is for, as the public records say it: one of "
        + ", ".join(purpose.value for purpose in Purpose)
        + " (docs/control_room.md)."
    )
    signage_notice: str = Field(min_length=1, description="What the public is told at the deployment.")
    authorised_by: str = Field(min_length=1, description="The officer who authorised the deployment (name, rank).")
    reason: str = Field(min_length=1, description="Why it is necessary and proportionate.")
    assembly: AssemblyAuthorisation | None = Field(
        None,
        description="Present when the deployment is at a protest or assembly: the supervisor-level authorisation"
        " (authorised_by_supervisor, rank, necessity, proportionality) it needs.",
    )
    exclusion_windows: tuple[ExclusionWindowConfig, ...] = Field(
        (),
        description="Stretches inside the window during which nothing is matched ({starts_at, ends_at, reason}),"
        " in time order, not overlapping.",
    )

    @field_validator("place", "watchlist_id", "watchlist_version", "signage_notice", "authorised_by", "reason")
    @classmethod
    def _says_something(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be blank: a deployment must be accountable in words")
        return text.strip()

    @field_validator("cameras")
    @classmethod
    def _cameras_listed_once(cls, cameras: tuple[str, ...]) -> tuple[str, ...]:
        first: dict[str, int] = {}
        for index, camera_id in enumerate(cameras):
            if camera_id in first:
                raise ValueError(f"cameras[{index}]: '{camera_id}' is listed twice (also cameras[{first[camera_id]}])")
            first[camera_id] = index
        return cameras

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> "DeploymentConfig":
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"ends_at ({self.ends_at.isoformat()}) must be after starts_at ({self.starts_at.isoformat()})"
            )
        return self

    @model_validator(mode="after")
    def _exclusions_fit(self) -> "DeploymentConfig":
        previous: ExclusionWindowConfig | None = None
        for index, exclusion in enumerate(self.exclusion_windows):
            where = f"exclusion_windows[{index}]"
            if exclusion.starts_at < self.starts_at or exclusion.ends_at > self.ends_at:
                raise ValueError(
                    f"{where} ({exclusion.starts_at.isoformat()} to {exclusion.ends_at.isoformat()})"
                    f" must lie inside the deployment's window"
                    f" ({self.starts_at.isoformat()} to {self.ends_at.isoformat()})"
                )
            if previous is not None and exclusion.starts_at < previous.ends_at:
                raise ValueError(
                    f"{where} starts at {exclusion.starts_at.isoformat()}, before exclusion_windows[{index - 1}] ends"
                    f" ({previous.ends_at.isoformat()}): list them in time order without overlap"
                    " (merge overlapping ones)"
                )
            previous = exclusion
        return self

    @property
    def window(self) -> DeploymentWindow:
        return DeploymentWindow(
            self.starts_at.timestamp(),
            self.ends_at.timestamp(),
            tuple(exclusion.exclusion() for exclusion in self.exclusion_windows),
        )

    @property
    def at_assembly(self) -> bool:
        return self.assembly is not None

    def is_active(self, at: datetime) -> bool:
        """Whether the deployment may match faces at `at` (a timezone-aware datetime): in its window, no exclusion."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"is_active needs a timezone-aware datetime, got naive {at.isoformat()}")
        return self.window.allows(at.timestamp())

    def authorisation(self) -> dict[str, object]:
        """What was authorised, by whom and why, as the audit log records it when a run starts (JSON-ready).

        With `assembly`, the supervisor-level authorisation and its necessity and proportionality
        reasons; every exclusion window with its times and reason (an empty list when none).
        """
        return {
            "place": self.place,
            "signage_notice": self.signage_notice,
            "authorised_by": self.authorised_by,
            "reason": self.reason,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "assembly": None if self.assembly is None else self.assembly.model_dump(mode="json"),
            "exclusion_windows": [window.model_dump(mode="json") for window in self.exclusion_windows],
        }

    def stated_fpir(self, default: float) -> float:
        """The false-alert rate this deployment accepts: its own, else `default` (matching.target_fpir)."""
        return default if self.target_fpir is None else self.target_fpir


def verify_deployment(deployment: DeploymentConfig, cameras: Sequence[CameraConfig], path: str = "deployment") -> None:
    """Check the deployment against the cameras section; the message names each bad YAML path."""
    known = {camera.id for camera in cameras}
    listed = ", ".join(sorted(known)) or "(no cameras configured)"
    problems = [
        f"{path}.cameras[{index}]: unknown camera '{camera_id}'; known: {listed}"
        for index, camera_id in enumerate(deployment.cameras)
        if camera_id not in known
    ]
    if problems:
        raise ValueError("; ".join(problems))
