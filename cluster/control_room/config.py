"""Configuration of the control room server (the `serve` section): how `lfr serve` guards itself.

It lives here, beside the page, rather than in `cluster.api` because `cluster.config` (the
domain) reads it and may not import the API layer.
"""

import ipaddress

from limits import parse
from pydantic import Field, field_validator

from cluster.section import Section

MIB = 1024 * 1024
DEFAULT_KEY_LIFETIME_DAYS = 90
MAX_KEY_LIFETIME_DAYS = 730


class ServeConfig(Section):
    """Limits on streams, bodies and request rates (the public records' apart), which proxies to believe, how long
    keys live, and how long the public records may be cached."""

    stream_max_s: float = Field(
        3600.0,
        gt=0.0,
        le=86_400.0,
        description="Seconds an event stream stays open; the client then reconnects (with Last-Event-ID) and signs in"
        " again.",
    )
    max_body_bytes: int = Field(
        MIB, ge=1024, le=64 * MIB, description="Largest request body accepted (413 beyond), with or without a length."
    )
    max_photo_bytes: int = Field(
        16 * MIB,
        ge=1024,
        le=64 * MIB,
        description="Largest request body a social search (POST /social/search, a photo upload) may send (413"
        " beyond); every other route keeps max_body_bytes.",
    )
    requests_per_client: str = Field(
        "100/second", description="Requests one client address may make (limits notation, such as 100/second)."
    )
    refusals_per_client: str = Field(
        "20/minute",
        description="Refused credentials one client address may present before it is answered 429 until the window"
        " passes.",
    )
    public_requests_per_client: str = Field(
        "60/minute",
        description="Requests one client address may make to the public deployment records (/public/), which need"
        " no key; counted apart from the control room's own limit.",
    )
    public_max_age_s: int = Field(
        60,
        ge=0,
        le=86_400,
        description="Seconds browsers and caches may keep a public records answer (Cache-Control max-age); they"
        " revalidate with its ETag after that.",
    )
    refusal_audit_interval_s: float = Field(
        60.0,
        gt=0.0,
        le=3600.0,
        description="Anonymous and refused requests are audited as counts per client and reason, every this many s.",
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Addresses or networks of reverse proxies whose X-Forwarded-For names the client; none: the"
        " connection's own address is the client.",
    )
    key_lifetime_days: int = Field(
        DEFAULT_KEY_LIFETIME_DAYS,
        ge=1,
        le=MAX_KEY_LIFETIME_DAYS,
        description="Days a new API key is accepted for, unless its issuer says otherwise.",
    )

    @field_validator("requests_per_client", "refusals_per_client", "public_requests_per_client")
    @classmethod
    def _is_a_rate(cls, value: str) -> str:
        try:
            rate = parse(value)
        except ValueError:
            rate = None
        if rate is None or rate.amount < 1:
            raise ValueError(f"{value!r} is not a rate: write it as N/second, N/minute or N/hour with N >= 1")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _are_addresses(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network: name each proxy (such as 10.0.0.5 or 10.0.0.0/24);"
                    " trusting every sender would let any client fake its address"
                ) from None
        return proxies
