"""Per-client rate limits: how often one client address may call, how many refused credentials it may present, and
how often it may read the public deployment records.

A flood of requests, refused or not, must not be able to slow the records database the pipeline
writes alerts to. The limits are counted in memory with the `limits` library (moving windows, one
per client address), so a throttled request costs no database read or write at all: the client
is answered 429 with Retry-After, and the request is only counted for the audit log (see
`cluster.api.tally`).

The client address is the connection's peer, or what a trusted proxy says it is (see
`ApiServer`'s trusted_proxies): never a header any local process can send.
"""

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

TOO_MANY_REQUESTS = "too many requests"
TOO_MANY_REFUSALS = "too many refused credentials"
TOO_MANY_PUBLIC_REQUESTS = "too many requests for the public records"


@dataclass(frozen=True)
class Throttled:
    """Why a client is turned away, and in how many whole seconds it may try again."""

    reason: str
    retry_after_s: int


class Throttle:
    """Two moving-window limits per client address: on every request, and on refused credentials."""

    def __init__(self, requests_per_client: str, refusals_per_client: str) -> None:
        self.requests: RateLimitItem = parse(requests_per_client)
        self.refusals: RateLimitItem = parse(refusals_per_client)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def admit(self, client: str) -> Throttled | None:
        """Count a request from `client`; None if it may go on, else why not and for how long."""
        if not self._limiter.test(self.refusals, client):
            return self._throttled(TOO_MANY_REFUSALS, self.refusals, client)
        if not self._limiter.hit(self.requests, client):
            return self._throttled(TOO_MANY_REQUESTS, self.requests, client)
        return None

    def refused(self, client: str) -> Throttled | None:
        """Count a refused credential from `client`; if that overdraws its budget (requests checked at the same
        time), it is answered as throttled too, so no client gets more refusals than the budget."""
        if self._limiter.hit(self.refusals, client):
            return None
        return self._throttled(TOO_MANY_REFUSALS, self.refusals, client)

    def _throttled(self, reason: str, limit: RateLimitItem, client: str) -> Throttled:
        reset_at = self._limiter.get_window_stats(limit, client).reset_time
        return Throttled(reason, max(1, math.ceil(reset_at - time.time())))


class PublicRate:
    """One moving-window limit per client address on the public records, which anyone may read without a key.

    Apart from `Throttle`'s, so the public's traffic and the officers' never use up each other's allowance.
    """

    def __init__(self, requests_per_client: str) -> None:
        self.requests: RateLimitItem = parse(requests_per_client)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def admit(self, client: str) -> Throttled | None:
        """Count a request from `client`; None if it may go on, else for how long it may not."""
        if self._limiter.hit(self.requests, client):
            return None
        reset_at = self._limiter.get_window_stats(self.requests, client).reset_time
        return Throttled(TOO_MANY_PUBLIC_REQUESTS, max(1, math.ceil(reset_at - time.time())))
