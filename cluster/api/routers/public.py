"""The public deployment records: a page and its JSON, without a key, under their own prefix.

Everything here is for anyone to read, so it can be exposed on its own (a reverse proxy that
forwards only /public/ to the internet) while the rest of the control room stays inside. The
gate lets these paths through without a credential, holds each client to the public rate, and
counts their requests for the audit log; these routes make every answer cacheable (Cache-Control
with max-age, a strong ETag, 304 to a matching If-None-Match), so browsers and a shared cache in
front of the server answer repeat requests for max-age seconds without reaching it.
"""

import hashlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from cluster.api import schemas
from cluster.api.public_page import STYLESHEET, render_page
from cluster.api.public_records import PublicDeployment, public_deployments
from cluster.api.services import ControlRoomServices, services

PUBLIC_PREFIX = "/public"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"

router = APIRouter(prefix=PUBLIC_PREFIX, tags=["public"])

Services = Annotated[ControlRoomServices, Depends(services)]
CACHEABLE: dict[int | str, dict[str, Any]] = {
    status.HTTP_304_NOT_MODIFIED: {"description": "The copy whose ETag was sent in If-None-Match is still current."}
}


@router.get(
    "/deployments",
    response_model=schemas.PublicRecordsOut,
    responses=CACHEABLE,
    summary="Past, current and planned deployments with their figures (public, no key)",
)
def deployments_json(request: Request, svc: Services) -> Response:
    body = schemas.public_records(_deployments(svc)).model_dump_json().encode("utf-8")
    return _cacheable(request, body, JSON, svc, headers={"Access-Control-Allow-Origin": "*"})


@router.get("/", include_in_schema=False)
def deployments_page(request: Request, svc: Services) -> Response:
    page = render_page(_deployments(svc), f"{PUBLIC_PREFIX}/deployments", f"{PUBLIC_PREFIX}/records.css")
    return _cacheable(request, page.encode("utf-8"), HTML, svc)


@router.get("/records.css", include_in_schema=False)
def stylesheet(request: Request, svc: Services) -> Response:
    return _cacheable(request, STYLESHEET, CSS, svc)


def _deployments(svc: ControlRoomServices) -> list[PublicDeployment]:
    return public_deployments(svc.records, svc.store, svc.board, svc.catalogue, time.time())


def _cacheable(
    request: Request, body: bytes, media_type: str, svc: ControlRoomServices, headers: dict[str, str] | None = None
) -> Response:
    """`body` with Cache-Control and its ETag, or 304 with no body when the client already holds it."""
    tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    caching = {"Cache-Control": f"public, max-age={svc.serve.public_max_age_s}", "ETag": tag, **(headers or {})}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=caching)
    return Response(body, media_type=media_type, headers=caching)


def _matches(if_none_match: str | None, tag: str) -> bool:
    """Whether If-None-Match names `tag` (weak comparison, as RFC 9110 asks for it) or is "*"."""
    if not if_none_match:
        return False
    given = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return "*" in given or tag in given
