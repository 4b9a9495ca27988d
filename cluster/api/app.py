"""The control room's HTTP API and page, as a FastAPI app that runs in a process of its own (`lfr serve`).

Why its own process rather than a Ray Serve ingress: the control room must stay up when the
cluster restarts or is redeployed (officers still need to see and decide the alerts already
raised, and every decision must still be recorded), and it needs nothing from the cluster: it
reads and writes only the records database, which the pipeline writes alerts and status into.
It also keeps the officers' HTTP traffic and its long-lived event streams off the GPUs' nodes,
and its auth and audit out of the face service's request path.

Everything goes through the gate (`cluster.api.gate`): no credential, no data, an audit
entry for every request made with one, and counts of those made without. OpenAPI's schema is
at /openapi.json (behind the gate too); the interactive docs pages are off because they load
their scripts from a CDN.
"""

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import structlog
from anyio import to_thread
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from cluster.alerts.errors import AlertNotFoundError, AlertStoreError
from cluster.api import schemas
from cluster.api.bodies import BodyLimit
from cluster.api.gate import Gate
from cluster.api.keys import UnknownUserError, UserError
from cluster.api.metrics import ControlRoomMetrics
from cluster.api.routers import alerts, audit, cases, deployments, events, page, public, social, users
from cluster.api.routers.public import PUBLIC_PREFIX
from cluster.api.services import ControlRoomServices
from cluster.api.social_search import PhotoRefusedError, SocialSearchUnavailableError
from cluster.api.stream import BUFFER_EVENTS, KEEPALIVE_S, POLL_INTERVAL_S, AlertEventHub
from cluster.api.tally import RequestTally
from cluster.api.throttle import PublicRate, Throttle
from cluster.cases.errors import CaseNotFoundError, CaseStoreError
from cluster.control_room import PAGE_FILES

log = structlog.get_logger(__name__)

TITLE = "lfr control room"
VERSION = "1"
PUBLIC_PATHS = frozenset(PAGE_FILES)
"""Paths served without a credential: the page's own files, which hold no data (and everything under PUBLIC_PREFIX,
the public deployment records, which hold nothing personal)."""

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorResponse, "description": "The body could not be parsed (not UTF-8 JSON)."},
    401: {"model": schemas.ErrorResponse, "description": "No credential, or one that is not accepted."},
    403: {"model": schemas.ErrorResponse, "description": "The credential's role does not allow this."},
    404: {"model": schemas.ErrorResponse, "description": "No such alert, sighting, photo, case, deployment or user."},
    409: {"model": schemas.ErrorResponse, "description": "Not allowed in the current state (lifecycle, hold, user)."},
    413: {"model": schemas.ErrorResponse, "description": "The body is larger than the server accepts."},
    429: {"model": schemas.ErrorResponse, "description": "Too many requests or refused credentials: see Retry-After."},
}

_STATUS_OF_ERROR: list[tuple[type[Exception], int]] = [
    (AlertNotFoundError, status.HTTP_404_NOT_FOUND),
    (AlertStoreError, status.HTTP_409_CONFLICT),
    (CaseNotFoundError, status.HTTP_404_NOT_FOUND),
    (CaseStoreError, status.HTTP_409_CONFLICT),
    (UnknownUserError, status.HTTP_404_NOT_FOUND),
    (UserError, status.HTTP_409_CONFLICT),
    (PhotoRefusedError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (SocialSearchUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
]
PHOTO_REMEDY = "upload a smaller photo of the face (crop it to the face, or save it as a JPEG)"


def create_app(
    services: ControlRoomServices,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    buffer_events: int = BUFFER_EVENTS,
    keepalive_s: float = KEEPALIVE_S,
) -> FastAPI:
    """The app over `services`; its event hub starts and stops with the server (lifespan)."""
    serve = services.serve
    hub = AlertEventHub(
        services.events,
        services.store,
        services.keys,
        poll_interval_s=poll_interval_s,
        buffer_events=buffer_events,
        keepalive_s=keepalive_s,
        lifetime_s=serve.stream_max_s,
    )
    tally = RequestTally()
    metrics = ControlRoomMetrics(services.store, services.retention, hub.clients)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await hub.start()
        flusher = asyncio.create_task(
            tally.flush_every(services.audit, serve.refusal_audit_interval_s), name="anonymous-request-audit"
        )
        try:
            yield
        finally:
            flusher.cancel()
            await hub.stop()
            try:
                await to_thread.run_sync(tally.flush, services.audit)
            except Exception:
                log.exception("anonymous_requests_not_audited_at_shutdown", pending=tally.pending())

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
    app.state.tally = tally
    app.state.metrics = metrics
    for router in (
        alerts.router,
        cases.router,
        social.router,
        events.router,
        deployments.router,
        audit.router,
        users.router,
        page.router,
        public.router,
    ):
        app.include_router(router)
    for error, code in _STATUS_OF_ERROR:
        app.add_exception_handler(error, _answer_with(code))
    app.add_middleware(
        Gate,
        keys=services.keys,
        audit=services.audit,
        public_paths=PUBLIC_PATHS,
        public_prefix=PUBLIC_PREFIX,
        public_rate=PublicRate(serve.public_requests_per_client),
        throttle=Throttle(serve.requests_per_client, serve.refusals_per_client),
        tally=tally,
        metrics=metrics,
        body_limit=BodyLimit(serve.max_body_bytes),
        upload_limits={social.SEARCH_PATH: BodyLimit(serve.max_photo_bytes, PHOTO_REMEDY)},
    )
    return app


def _answer_with(code: int):
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler
