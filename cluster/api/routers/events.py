"""The live alert stream (Server-Sent Events), resumable from the last event a client saw.

It lasts while the caller's key is accepted, and at most the server's stream lifetime; the
client then reconnects with Last-Event-ID, which authenticates it again.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from cluster.api import schemas
from cluster.api.auth import Operator
from cluster.api.stream import RETRY_MS, AlertEventHub

router = APIRouter(tags=["events"])

EVENT_STREAM = "text/event-stream"


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {"schema": {"type": "string"}}}, "description": "alert events"}},
    summary="Follow alert events live",
)
async def follow_events(
    caller: Operator,
    request: Request,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=schemas.MAX_EVENT_ID,
            description="Resume after this event id (a reconnect's last id, or a page's last_event_id); none: now.",
        ),
    ] = None,
) -> StreamingResponse:
    """Each message is `event: alert` with `id:` the event id and `data:` an AlertEventOut in JSON."""
    hub: AlertEventHub = request.app.state.hub
    start = hub.head if last_event_id is None else last_event_id
    return StreamingResponse(
        _messages(hub, start, caller.key_id), media_type=EVENT_STREAM, headers={"X-Accel-Buffering": "no"}
    )


async def _messages(hub: AlertEventHub, start: int, key_id: str) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    async for items in hub.follow(start, key_id):
        yield ": keepalive\n\n" if items is None else "".join(item.message for item in items)
