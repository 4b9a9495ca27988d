"""Bounded retries of Milvus calls for transient faults, and clear errors for the rest.

Transient: the server is not reachable (restarting, connection lost), timed out, or rate
limited. Those are retried up to `attempts` times with exponential backoff; then the caller
gets a `GalleryUnavailableError` naming the URI and what to do. Anything else (a bad
expression, a missing collection) is not retried and becomes a `GalleryError` at once.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import grpc
import structlog
from pymilvus.client.types import Status
from pymilvus.exceptions import ErrorCode, MilvusException

from cluster.gallery.config import RetryConfig
from cluster.gallery.errors import GalleryError, GalleryUnavailableError

log = structlog.get_logger(__name__)

T = TypeVar("T")

TRANSIENT_GRPC_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


def is_transient(error: BaseException) -> bool:
    """Whether trying the same call again may succeed."""
    if isinstance(error, grpc.RpcError):
        return error.code() in TRANSIENT_GRPC_CODES
    if isinstance(error, MilvusException):
        code = error.code
        if isinstance(code, grpc.StatusCode):
            return code in TRANSIENT_GRPC_CODES
        return code in (Status.CONNECT_FAILED, ErrorCode.RATE_LIMIT) or error.retriable
    return False


def describe(error: BaseException) -> str:
    """A one-line cause for an error message."""
    if isinstance(error, MilvusException):
        return error.message or str(error)
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


class RetryPolicy:
    """Runs a call, retrying transient faults with exponential backoff, at most `attempts` tries."""

    def __init__(self, config: RetryConfig, uri: str, remedy: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.uri = uri
        self.remedy = remedy
        self._sleep = sleep

    def call(self, operation: str, attempt: Callable[[], T]) -> T:
        """The call's result; GalleryUnavailableError when every try met a transient fault, else GalleryError."""
        config = self.config
        started = time.monotonic()
        delay = config.initial_backoff_s
        number = 1
        while True:
            try:
                return attempt()
            except (MilvusException, grpc.RpcError) as error:
                if not is_transient(error):
                    raise GalleryError(f"{operation} failed on Milvus at {self.uri}: {describe(error)}") from error
                if number >= config.attempts:
                    elapsed = time.monotonic() - started
                    raise GalleryUnavailableError(
                        f"{operation}: Milvus at {self.uri} is unreachable after {number} attempt(s) over"
                        f" {elapsed:.1f} s ({describe(error)}); {self.remedy}"
                    ) from error
                log.warning(
                    "milvus_call_retry",
                    operation=operation,
                    uri=self.uri,
                    attempt=number,
                    delay_s=round(delay, 3),
                    error=describe(error),
                )
                self._sleep(delay)
                delay = min(config.max_backoff_s, delay * config.multiplier)
                number += 1
