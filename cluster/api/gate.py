"""The gate every HTTP request passes: throttle, check the credential, cap the body, audit.

Deny by default: the gate refuses (401) any request without a valid bearer token, whatever
route it asks for, except the few files of the page itself (`public_paths`), which carry no
data and must load to show the login form, and the public deployment records under
`public_prefix`, which hold nothing personal and are the public's to read (their own rate limit
per client, cacheable, counted for the audit log like the page's files). A route added later
elsewhere is therefore protected even if its author forgets; the route's own dependency then
checks the role (403). Every refused credential gets the same answer, whatever was wrong with
it: only the audit log says why.

Every request made with an accepted credential gets an audit entry of its own, written before
the response starts, so no data leaves the server unrecorded: REQUEST with the user's name, or
LOGIN for `/me` (the page's sign-in check). If that entry cannot be written the request fails
(500) rather than being answered unaudited. Requests without an accepted credential (refused,
throttled, or for the page's files) reveal nothing and are audited as counts per interval
(`cluster.api.tally`), so a flood of them cannot slow the database or make requests fail.

Before any of that, each client address is held to a request rate and a budget of refused
credentials (`cluster.api.throttle`): beyond them it gets 429 with Retry-After. Bodies are
capped as they arrive (`cluster.api.bodies`): every route's at one limit, a route that takes an upload
(`upload_limits`, by path) at its own. Keys pasted into a URL are redacted before the
path and query are audited (`cluster.api.redaction`).

It also sets the headers that keep personal data out of caches and the page out of frames.
"""

import hmac
import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cluster.api.bodies import BodyLimit, capped, declared_length
from cluster.api.keys import ApiKeys, CredentialError, Principal
from cluster.api.metrics import CONTENT_TYPE, METRICS_PATH, METRICS_TOKEN_ENV, ControlRoomMetrics
from cluster.api.redaction import redact
from cluster.api.tally import REFUSED, SERVED, RequestTally, TallyKey
from cluster.api.throttle import PublicRate, Throttle, Throttled
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog

PRINCIPAL_SCOPE_KEY = "lfr.principal"
LOGIN_PATH = "/me"
MAX_SUBJECT_CHARS = 200
MAX_QUERY_CHARS = 500
UNKNOWN_CLIENT = "unknown"
METRICS_REFUSED_DETAIL = (
    f"metrics are served to a client on this host, or with the token in {METRICS_TOKEN_ENV} as a bearer token"
)
REFUSED_DETAIL = (
    "not signed in: send Authorization: Bearer <token> with a current key"
    " (`lfr serve add-user`, or `lfr serve new-key` for a new one)"
)
"""The one answer to every refused credential, so the answer tells a guesser nothing; the audit log says why."""
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
    """ASGI middleware: throttle, authenticate, cap bodies, audit, add security headers."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys,
        audit: AuditLog,
        public_paths: Iterable[str],
        *,
        public_prefix: str,
        public_rate: PublicRate,
        throttle: Throttle,
        tally: RequestTally,
        metrics: ControlRoomMetrics,
        body_limit: BodyLimit,
        upload_limits: Mapping[str, BodyLimit],
    ) -> None:
        self.app = app
        self.keys = keys
        self.audit = audit
        self.public_paths = frozenset(public_paths)
        self.public_prefix = public_prefix.rstrip("/")
        self.public_rate = public_rate
        self.throttle = throttle
        self.tally = tally
        self.metrics = metrics
        self.body_limit = body_limit
        self.upload_limits = dict(upload_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = client_address(scope)
        path = scope["path"]
        if path == self.public_prefix or path.startswith(self.public_prefix + "/"):
            await self._serve_public_records(scope, receive, send, client)
            return
        throttled = self.throttle.admit(client)
        if throttled is not None:
            await self._throttle(scope, send, client, throttled)
            return
        if scope["path"] == METRICS_PATH:
            await self._serve_metrics(scope, send, client)
            return
        if scope["path"] in self.public_paths:
            await self._serve_page(scope, receive, send, client)
            return
        try:
            principal = await to_thread.run_sync(self.keys.authenticate, _bearer_token(scope))
        except CredentialError as refused:
            throttled = self.throttle.refused(client)
            if throttled is not None:
                await self._throttle(scope, send, client, throttled)
                return
            self.tally.count(TallyKey(client, REFUSED, refused.reason, 401), _audited_path(scope), refused.key_id)
            self.metrics.refused(refused.reason, 401)
            await _answer(send, 401, REFUSED_DETAIL, [(b"www-authenticate", b'Bearer realm="lfr"')])
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        started = False

        async def audited_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                self.metrics.request(scope["method"], _route_template(scope), message["status"])
                await self._record_request(scope, principal, message["status"])
                started = True
                message = {**message, "headers": _with_security_headers(message.get("headers", []))}
            await send(message)

        limit = self.upload_limits.get(path, self.body_limit)
        length = declared_length(scope)
        if length is not None and length > limit.max_bytes:
            await _answer(audited_send, 413, limit.refusal().detail, [(b"connection", b"close")])
            return
        try:
            await self.app(scope, capped(receive, limit), audited_send)
        except Exception:
            if not started:
                await self._record_request(scope, principal, 500)
            raise

    async def _throttle(self, scope: Scope, send: Send, client: str, throttled: Throttled) -> None:
        self.tally.count(TallyKey(client, REFUSED, throttled.reason, 429), _audited_path(scope))
        self.metrics.refused(throttled.reason, 429)
        detail = f"{throttled.reason} from {client}: try again in {throttled.retry_after_s} s"
        await _answer(send, 429, detail, [(b"retry-after", str(throttled.retry_after_s).encode())])

    async def _serve_metrics(self, scope: Scope, send: Send, client: str) -> None:
        """/metrics: to a loopback client, or one with the metrics token; no personal data, so each scrape is counted
        for the audit log (like the page's files) rather than written one by one."""
        if not (_is_loopback(client) or _has_metrics_token(scope)):
            self.tally.count(TallyKey(client, REFUSED, "metrics not allowed", 403), METRICS_PATH)
            self.metrics.refused("metrics not allowed", 403)
            await _answer(send, 403, METRICS_REFUSED_DETAIL, [])
            return
        self.tally.count(TallyKey(client, SERVED, "metrics", 200), METRICS_PATH)
        body = await to_thread.run_sync(self.metrics.render)
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": _with_security_headers(headers)})
        await send({"type": "http.response.body", "body": body})

    async def _serve_page(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        """A page file: no credential, no data; counted for the audit log rather than written one by one."""

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.tally.count(TallyKey(client, SERVED, "page file", message["status"]), _audited_path(scope))
                message = {**message, "headers": _with_security_headers(message.get("headers", []))}
            await send(message)

        await self.app(scope, capped(receive, self.body_limit), counted_send)

    async def _serve_public_records(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        """The public deployment records: no credential, a rate of their own, the route's own caching headers."""
        throttled = self.public_rate.admit(client)
        if throttled is not None:
            await self._throttle(scope, send, client, throttled)
            return

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.tally.count(TallyKey(client, SERVED, "public records", message["status"]), _audited_path(scope))
                headers = _with_security_headers(message.get("headers", []), cacheable=True)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, capped(receive, self.body_limit), counted_send)

    async def _record_request(self, scope: Scope, principal: Principal, status: int) -> None:
        action = AuditAction.LOGIN if scope["path"] == LOGIN_PATH else AuditAction.REQUEST
        details = {**_request_details(scope, status), "key_id": principal.key_id}
        if action is AuditAction.LOGIN:
            details["outcome"] = "accepted"
        await to_thread.run_sync(self.audit.record, principal.name, action, _subject(scope), details)


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": _with_security_headers(headers)})
    await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded: never an id), or "unmatched"."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _is_loopback(client: str) -> bool:
    try:
        return ipaddress.ip_address(client).is_loopback
    except ValueError:
        return False


def _has_metrics_token(scope: Scope) -> bool:
    expected = os.environ.get(METRICS_TOKEN_ENV)
    given = _bearer_token(scope)
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def client_address(scope: Scope) -> str:
    """The client's address as the server knows it: the peer, or what a trusted proxy said (see ApiServer)."""
    client = scope.get("client")
    return UNKNOWN_CLIENT if client is None else str(client[0])


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _subject(scope: Scope) -> str:
    """The request path as sent (percent-encoded, so printable), keys redacted, cut to what the audit log takes."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8", "backslashreplace")
    text = redact(raw.decode("ascii", "backslashreplace"))
    return text[:MAX_SUBJECT_CHARS]


def _audited_path(scope: Scope) -> str:
    return redact(scope["path"])[:MAX_SUBJECT_CHARS]


def _request_details(scope: Scope, status: int) -> dict:
    query = redact(unquote(scope.get("query_string", b"").decode("ascii", "backslashreplace")))
    return {
        "method": scope["method"],
        "path": _audited_path(scope),
        "query": query[:MAX_QUERY_CHARS],
        "status": status,
        "client": client_address(scope),
    }


def _with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], *, cacheable: bool = False
) -> list[tuple[bytes, bytes]]:
    """The response's headers with ours in place of theirs; `cacheable` keeps a Cache-Control the route set."""
    headers = list(headers)
    kept = {b"cache-control"} if cacheable and any(name.lower() == b"cache-control" for name, _ in headers) else set()
    ours = [(name, value) for name, value in SECURITY_HEADERS if name not in kept]
    replaced = {name for name, _ in ours}
    return [(name, value) for name, value in headers if name.lower() not in replaced] + ours
