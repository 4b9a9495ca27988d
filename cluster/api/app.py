"""The control room's HTTP API and page, as a FastAPI app that runs in a process of its own (`lfr serve`).

Why its own process rather than a Ray Serve ingress: the control room must stay up when the
cluster restarts or is redeployed (officers still need to see and decide the alerts already
raised, and every decision must still be recorded), and it needs nothing from the cluster: it
reads and writes only the records database, which the pipeline writes alerts and status into.
It also keeps the officers' HTTP traffic and its long-lived event streams off the GPUs' nodes,
and its auth and audit out of the face service's request path.

Everything goes through the gate (`cluster.api.gate`): no credential, no data, and an audit
entry for every request. OpenAPI's schema is at /openapi.json (behind the gate too); the
interactive docs pages are off because they load their scripts from a CDN.
"""

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from cluster.alerts.errors import AlertNotFoundError, AlertStoreError
from cluster.api import schemas
from cluster.api.gate import Gate
from cluster.api.keys import UnknownUserError, UserError
from cluster.api.routers import alerts, deployments, events, page, users
from cluster.api.services import ControlRoomServices
from cluster.api.stream import BUFFER_EVENTS, KEEPALIVE_S, POLL_INTERVAL_S, AlertEventHub
from cluster.control_room import PAGE_FILES

TITLE = "lfr control room"
VERSION = "1"
PUBLIC_PATHS = frozenset(PAGE_FILES)
"""The only paths served without a credential: the page's own files, which hold no data."""

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorResponse, "description": "The body could not be parsed (not UTF-8 JSON)."},
    401: {"model": schemas.ErrorResponse, "description": "No credential, or one that is not accepted."},
    403: {"model": schemas.ErrorResponse, "description": "The credential's role does not allow this."},
    404: {"model": schemas.ErrorResponse, "description": "No such alert, sighting, photo, deployment or user."},
    409: {"model": schemas.ErrorResponse, "description": "Not allowed in the current state (lifecycle, hold, user)."},
}

_STATUS_OF_ERROR: list[tuple[type[Exception], int]] = [
    (AlertNotFoundError, status.HTTP_404_NOT_FOUND),
    (AlertStoreError, status.HTTP_409_CONFLICT),
    (UnknownUserError, status.HTTP_404_NOT_FOUND),
    (UserError, status.HTTP_409_CONFLICT),
]


def create_app(
    services: ControlRoomServices,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    buffer_events: int = BUFFER_EVENTS,
    keepalive_s: float = KEEPALIVE_S,
) -> FastAPI:
    """The app over `services`; its event hub starts and stops with the server (lifespan)."""
    hub = AlertEventHub(
        services.events,
        services.store,
        poll_interval_s=poll_interval_s,
        buffer_events=buffer_events,
        keepalive_s=keepalive_s,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Live facial recognition alerts: view, adjudicate and follow them. Every request is audited.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=ERRORS,
    )
    app.state.services = services
    app.state.hub = hub
    for router in (alerts.router, events.router, deployments.router, users.router, page.router):
        app.include_router(router)
    for error, code in _STATUS_OF_ERROR:
        app.add_exception_handler(error, _answer_with(code))
    app.add_middleware(Gate, keys=services.keys, audit=services.audit, public_paths=PUBLIC_PATHS)
    return app


def _answer_with(code: int):
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler
