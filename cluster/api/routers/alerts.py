"""Alerts: list and filter them, read one with its evidence, and record officers' decisions on it."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError

from cluster.alerts.model import AlertState
from cluster.alerts.query import AlertFilter
from cluster.api import schemas
from cluster.api.auth import Operator, Reader, Supervisor
from cluster.api.services import ControlRoomServices, services

MAX_LIST_LIMIT = 500
JPEG = "image/jpeg"

router = APIRouter(tags=["alerts"])

Services = Annotated[ControlRoomServices, Depends(services)]
AlertId = Annotated[str, Path(min_length=1, max_length=200, description="The alert's id.")]
JPEG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {JPEG: {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get("/alerts", response_model=schemas.AlertPageOut, summary="List alerts, newest first")
def list_alerts(
    caller: Reader,
    svc: Services,
    state: Annotated[list[AlertState], Query(description="Repeat for several states; none: any.")] = [],  # noqa: B006
    deployment_id: Annotated[str | None, Query(max_length=200)] = None,
    person_id: Annotated[str | None, Query(max_length=200)] = None,
    camera_id: Annotated[str | None, Query(max_length=200, description="Seen by this camera.")] = None,
    since: Annotated[float | None, Query(allow_inf_nan=False, description="Raised at or after (unix s).")] = None,
    until: Annotated[float | None, Query(allow_inf_nan=False, description="Raised before (unix s).")] = None,
    held: Annotated[bool | None, Query(description="Only held (true) or not held (false) alerts.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000, description="next_cursor of the page before.")] = None,
) -> schemas.AlertPageOut:
    try:
        filters = AlertFilter(
            states=tuple(state),
            deployment_id=deployment_id,
            person_id=person_id,
            camera_id=camera_id,
            since=since,
            until=until,
            held=held,
        )
    except ValueError as exc:
        raise _query_error("until", exc) from exc
    last_event_id = svc.events.last_id()
    try:
        page = svc.store.list(filters, limit, cursor)
    except ValueError as exc:
        raise _query_error("cursor", exc) from exc
    return schemas.AlertPageOut(
        alerts=[schemas.summary(alert) for alert in page.alerts],
        next_cursor=page.next_cursor,
        last_event_id=last_event_id,
    )


def _query_error(name: str, exc: ValueError) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, so clients parse one kind of validation error."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": str(exc), "input": None}])


@router.get("/alerts/{alert_id}", response_model=schemas.AlertDetail, summary="One alert with its sightings")
def get_alert(caller: Reader, svc: Services, alert_id: AlertId) -> schemas.AlertDetail:
    return schemas.detail(svc.store.get(alert_id))


@router.get(
    "/alerts/{alert_id}/sightings/{sighting_id}/crop",
    response_class=Response,
    responses=JPEG_RESPONSE,
    summary="A sighting's face crop (JPEG)",
)
def sighting_crop(
    caller: Operator, svc: Services, alert_id: AlertId, sighting_id: Annotated[str, Path(min_length=1, max_length=400)]
) -> Response:
    alert = svc.store.get(alert_id)
    crop = next((s.crop_jpeg for s in alert.sightings if s.sighting_id == sighting_id), None)
    if crop is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} has no crop for sighting {sighting_id!r}")
    return Response(crop, media_type=JPEG)


@router.get(
    "/alerts/{alert_id}/watchlist-photo",
    response_class=Response,
    responses=JPEG_RESPONSE,
    summary="The watchlist photo of the alert's person (JPEG)",
)
def watchlist_photo(caller: Operator, svc: Services, alert_id: AlertId) -> Response:
    alert = svc.store.get(alert_id)
    photo = svc.photos.photo(alert.person_id, alert.watchlist_id)
    if photo is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no watchlist photo of {alert.person_id} in watchlist {alert.watchlist_id}"
        )
    return Response(photo, media_type=JPEG)


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertDetail, summary="Take a new alert on")
def acknowledge(
    caller: Operator, svc: Services, alert_id: AlertId, body: schemas.AcknowledgeRequest
) -> schemas.AlertDetail:
    return schemas.detail(svc.store.transition(alert_id, AlertState.ACKNOWLEDGED, caller.name, body.reason))


@router.post("/alerts/{alert_id}/confirm", response_model=schemas.AlertDetail, summary="Confirm an acknowledged alert")
def confirm(caller: Operator, svc: Services, alert_id: AlertId, body: schemas.DecisionRequest) -> schemas.AlertDetail:
    return schemas.detail(svc.store.transition(alert_id, AlertState.CONFIRMED, caller.name, body.reason))


@router.post("/alerts/{alert_id}/reject", response_model=schemas.AlertDetail, summary="Reject an alert as false")
def reject(caller: Operator, svc: Services, alert_id: AlertId, body: schemas.DecisionRequest) -> schemas.AlertDetail:
    return schemas.detail(svc.store.transition(alert_id, AlertState.REJECTED, caller.name, body.reason))


@router.post("/alerts/{alert_id}/hold", response_model=schemas.AlertDetail, summary="Keep past retention (supervisor)")
def hold(caller: Supervisor, svc: Services, alert_id: AlertId, body: schemas.HoldRequest) -> schemas.AlertDetail:
    return schemas.detail(svc.store.hold(alert_id, caller.name, body.reason))


@router.post("/alerts/{alert_id}/release", response_model=schemas.AlertDetail, summary="End a hold (supervisor)")
def release(caller: Supervisor, svc: Services, alert_id: AlertId, body: schemas.HoldRequest) -> schemas.AlertDetail:
    return schemas.detail(svc.store.release(alert_id, caller.name, body.reason))
