"""Deployments and cameras: what the pipeline last published, the deployment's authorisation and its report."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from cluster.api import schemas
from cluster.api.auth import Overseer, Reader, Supervisor
from cluster.api.services import ControlRoomServices, services
from cluster.application.reports import DeploymentReports, report_json
from cluster.live.status_board import DeploymentStatus
from cluster.oversight.records import NoDeploymentRecordsError

router = APIRouter(tags=["deployments"])

Services = Annotated[ControlRoomServices, Depends(services)]
DeploymentId = Annotated[str, Path(min_length=1, max_length=200)]


def _status_out(svc: ControlRoomServices, deployment: DeploymentStatus) -> schemas.DeploymentStatusOut:
    stats = svc.store.stats(deployment.deployment_id)
    return schemas.deployment_status(deployment, stats, svc.board.age_s(deployment))


@router.get("/deployments", response_model=list[schemas.DeploymentStatusOut], summary="Every deployment's status")
def list_deployments(caller: Reader, svc: Services) -> list[schemas.DeploymentStatusOut]:
    return [_status_out(svc, deployment) for deployment in svc.board.all_latest()]


@router.get(
    "/deployments/{deployment_id}", response_model=schemas.DeploymentStatusOut, summary="One deployment's status"
)
def get_deployment(caller: Reader, svc: Services, deployment_id: DeploymentId) -> schemas.DeploymentStatusOut:
    deployment = svc.board.latest(deployment_id)
    if deployment is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no status for deployment {deployment_id!r}: is its pipeline running?"
        )
    return _status_out(svc, deployment)


@router.get(
    "/deployments/{deployment_id}/authorisation",
    response_model=schemas.AuthorisationOut,
    summary="Who authorised the deployment, why, and on what terms (supervisor, auditor)",
)
def get_authorisation(caller: Overseer, svc: Services, deployment_id: DeploymentId) -> schemas.AuthorisationOut:
    if svc.deployment is None or svc.deployment.id != deployment_id:
        configured = "none" if svc.deployment is None else repr(svc.deployment.id)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"deployment {deployment_id!r} is not this server's configured deployment ({configured})",
        )
    return schemas.authorisation(svc.deployment)


@router.get(
    "/deployments/{deployment_id}/report",
    response_model=schemas.DeploymentReportOut,
    summary="The deployment's report: authorisation, outcomes, rates, breakdowns (supervisor, auditor)",
)
def get_report(caller: Overseer, svc: Services, deployment_id: DeploymentId) -> Response:
    """Read-only; making it is audited (a REQUEST entry with the report's SHA-256), as `lfr report deployment` is.

    The body is byte for byte what report.json would hold, so the digest in the audit entry checks it.
    """
    try:
        report = DeploymentReports(svc.store).make(deployment_id, officer=caller.name, channel="api")
    except NoDeploymentRecordsError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(report_json(report), media_type="application/json")


@router.get("/cameras", response_model=list[schemas.DeploymentCameraOut], summary="Every camera's health")
def list_cameras(caller: Reader, svc: Services) -> list[schemas.DeploymentCameraOut]:
    return [
        schemas.deployment_camera(deployment.deployment_id, health)
        for deployment in svc.board.all_latest()
        for health in deployment.cameras
    ]


@router.post(
    "/retention/purge",
    response_model=schemas.PurgeOut,
    summary="Purge expired alerts and cases, and rejected alerts' expired crops and suppressions, now (supervisor)",
)
def purge_now(caller: Supervisor, svc: Services) -> schemas.PurgeOut:
    """What the retention scheduler does at its next run, done now and audited under the supervisor's name."""
    retention = svc.retention
    purged = svc.store.purge(retention.older_than_s, actor=caller.name)
    expired = svc.store.expire_rejections(retention.oversight_s, retention.suppression_s, actor=caller.name)
    cases = svc.cases.purge(retention.case_s, actor=caller.name)
    return schemas.purge(purged, expired, cases)
