"""The gate every HTTP request passes: check the credential, and audit the request before answering.

Deny by default: the gate refuses (401) any request without a valid bearer token, whatever
route it asks for, except the few files of the page itself (`public_paths`), which carry no
data and must load to show the login form. A route added later is therefore protected even if
its author forgets; the route's own dependency then checks the role (403).

Every request gets an audit entry, written before the response starts, so nothing leaves the
server unrecorded: REQUEST with the user's name, LOGIN for `/me` (the page's sign-in check),
and LOGIN with outcome refused (actor `anonymous`, the key id when the token had one, never the
token) for a refused credential. If the audit entry cannot be written, the request fails
(500) rather than being answered unaudited.

It also sets the headers that keep personal data out of caches and the page out of frames.
"""

import json
from collections.abc import Iterable
from urllib.parse import unquote

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cluster.api.keys import ApiKeys, CredentialError, Principal
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog

PRINCIPAL_SCOPE_KEY = "lfr.principal"
ANONYMOUS = "anonymous"
LOGIN_PATH = "/me"
MAX_SUBJECT_CHARS = 200
MAX_QUERY_CHARS = 500
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self';"
    " form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", PAGE_POLICY.encode()),
]


class Gate:
    """ASGI middleware: authenticate, audit, add security headers."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, audit: AuditLog, public_paths: Iterable[str]) -> None:
        self.app = app
        self.keys = keys
        self.audit = audit
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        principal: Principal | None = None
        if path not in self.public_paths:
            try:
                principal = await to_thread.run_sync(self.keys.authenticate, _bearer_token(scope))
            except CredentialError as refused:
                await self._refuse(scope, send, refused)
                return
            scope[PRINCIPAL_SCOPE_KEY] = principal
        started = False

        async def audited_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                await self._record_request(scope, principal, message["status"])
                started = True
                message = {**message, "headers": _with_security_headers(message.get("headers", []))}
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not started:
                await self._record_request(scope, principal, 500)
            raise

    async def _record_request(self, scope: Scope, principal: Principal | None, status: int) -> None:
        actor = ANONYMOUS if principal is None else principal.name
        action = AuditAction.LOGIN if scope["path"] == LOGIN_PATH else AuditAction.REQUEST
        details = _request_details(scope, status)
        if principal is not None:
            details["key_id"] = principal.key_id
        if action is AuditAction.LOGIN:
            details["outcome"] = "accepted"
        await self._record(actor, action, scope, details)

    async def _refuse(self, scope: Scope, send: Send, refused: CredentialError) -> None:
        details = {**_request_details(scope, 401), "outcome": "refused", "reason": refused.reason}
        if refused.key_id is not None:
            details["key_id"] = refused.key_id
        await self._record(ANONYMOUS, AuditAction.LOGIN, scope, details)
        body = json.dumps(
            {"detail": f"{refused.reason}: send Authorization: Bearer <token> with a key from `lfr serve add-user`"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="lfr"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": _with_security_headers(headers)})
        await send({"type": "http.response.body", "body": body})

    async def _record(self, actor: str, action: AuditAction, scope: Scope, details: dict) -> None:
        await to_thread.run_sync(self.audit.record, actor, action, _subject(scope), details)


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _subject(scope: Scope) -> str:
    """The request path as sent (percent-encoded, so printable), cut to what the audit log takes."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8", "backslashreplace")
    text = raw.decode("ascii", "backslashreplace")
    return text[:MAX_SUBJECT_CHARS]


def _request_details(scope: Scope, status: int) -> dict:
    query = unquote(scope.get("query_string", b"").decode("ascii", "backslashreplace"))
    client = scope.get("client")
    return {
        "method": scope["method"],
        "path": scope["path"][:MAX_SUBJECT_CHARS],
        "query": query[:MAX_QUERY_CHARS],
        "status": status,
        "client": None if client is None else client[0],
    }


def _with_security_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name for name, _ in SECURITY_HEADERS}
    return [(name, value) for name, value in headers if name.lower() not in names] + SECURITY_HEADERS
