"""Caps on request bodies, enforced while they arrive, so an oversized one is never held in memory.

Most routes take no more than a short JSON body, yet FastAPI reads whatever is sent before
parsing: one 150 MB body cost the server 600 MB. A body that declares a larger Content-Length
than its route's `BodyLimit` is refused before any of it is read; one sent in chunks (no length)
or longer than it said is counted as it is received and refused as soon as it passes the cap,
having held at most the cap and one chunk. A route that takes an upload (a social search's
photo) has a cap of its own, with its own advice.
"""

from dataclasses import dataclass

from fastapi import HTTPException, status
from starlette.types import Message, Receive, Scope

JSON_REMEDY = "send only the JSON fields the route documents"


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request body may have, and what to do instead when it has more."""

    max_bytes: int
    remedy: str = JSON_REMEDY

    def refusal(self) -> HTTPException:
        return HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"the request body is larger than {self.max_bytes} bytes: {self.remedy}"
        )


def declared_length(scope: Scope) -> int | None:
    """The Content-Length the request declares; None when it declares none (or an unreadable one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def capped(receive: Receive, limit: BodyLimit) -> Receive:
    """`receive` that raises 413 (an HTTPException, which routes pass on as it is) once the limit is passed."""
    received = 0

    async def receive_capped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit.max_bytes:
                raise limit.refusal()
        return message

    return receive_capped
