"""Configuration of the face gallery (the `gallery` section of `LfrConfig`).

The backend is a discriminated union on `type`: `milvus-lite` (the embedded default, one
local server process that `lfr` starts over a data directory, reachable only through a socket
in it) or `milvus` (a real Milvus server reached by URI, with authentication). Everything else
(consistency, top-k, timeouts, retries) is shared, so one `Gallery` code path serves both.
Validators do no I/O: `~` is expanded, directories are created and credentials read from the
environment when the gallery opens, not here.
"""

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from cluster.section import Section

DEFAULT_LITE_DATA_DIR = Path("~/.local/share/lfr/milvus")
FORMER_CATALOGUE_PATH = Path("~/.local/share/lfr/gallery-catalogue.sqlite")
"""Where the catalogue was kept before it moved into the records database (the former default)."""
SERVER_URI_SCHEMES = ("http", "https", "tcp", "unix")
SOCIAL_RETENTION_MAX_DAYS = 31
"""Faces ingested from social media are kept at most this long, as alerts are (`retention.days`)."""
DEFAULT_TOKEN_ENV = "LFR_MILVUS_TOKEN"


class HnswConfig(Section):
    """HNSW graph settings: M and efConstruction shape the index; ef is the search breadth."""

    m: int = Field(16, ge=4, le=64, description="Neighbours per node (Milvus `M`).")
    ef_construction: int = Field(200, ge=8, le=512, description="Build-time breadth (Milvus `efConstruction`).")
    ef: int = Field(64, ge=1, le=32768, description="Search-time breadth; must be at least top_k.")


class LiteBackendConfig(Section):
    """Embedded milvus-lite: one server process owns the data directory and listens on a socket inside it.

    milvus-lite has no authentication, so it listens on no TCP port: only on `<data_dir>/milvus.sock`,
    in a directory kept at mode 0700 (see `cluster.gallery.lite_backend`).
    """

    type: Literal["milvus-lite"] = "milvus-lite"
    data_dir: Path = Field(
        DEFAULT_LITE_DATA_DIR,
        description="Where the milvus-lite data, its socket, its lock and the server's state file live (0700).",
    )
    index: HnswConfig = HnswConfig()


class ServerBackendConfig(Section):
    """A real Milvus server (2.3.x) reached by URI, with authentication (`common.security.authorizationEnabled`).

    Its credentials come from `token`, else from the environment variable named by `token_env`;
    a gallery is never opened without them.
    """

    type: Literal["milvus"]
    uri: str = Field(description="http://host:19530, https://..., tcp://... or unix:/path/to.sock")
    token: SecretStr | None = Field(
        None, description="user:password or an API token; never logged. Unset: read from `token_env`."
    )
    token_env: str = Field(
        DEFAULT_TOKEN_ENV,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding user:password when `token` is unset.",
    )
    shards: int = Field(2, ge=1, le=16, description="Shards of each collection, fixed when it is created.")
    index: HnswConfig = HnswConfig()

    @field_validator("uri")
    @classmethod
    def _uri_has_known_scheme(cls, uri: str) -> str:
        scheme = urlsplit(uri).scheme.lower()
        if scheme not in SERVER_URI_SCHEMES:
            raise ValueError(f"must start with one of {', '.join(s + ':' for s in SERVER_URI_SCHEMES)}, got {uri!r}")
        if scheme != "unix" and not urlsplit(uri).hostname:
            raise ValueError(f"names no host, got {uri!r}; e.g. http://127.0.0.1:19530")
        return uri


class TimeoutsConfig(Section):
    """How long each kind of call may take before it counts as failed."""

    connect_s: float = Field(5.0, gt=0.0, le=120.0, description="Opening the connection to Milvus.")
    request_s: float = Field(30.0, gt=0.0, le=600.0, description="One management call (create, insert, delete, query).")
    search_s: float = Field(2.0, gt=0.0, le=120.0, description="One search round trip (the live match stage).")
    start_s: float = Field(60.0, gt=0.0, le=600.0, description="Starting the embedded milvus-lite server.")


class RetryConfig(Section):
    """Bounded retries with exponential backoff for transient faults (server restarting, connection lost)."""

    attempts: int = Field(4, ge=1, le=20, description="Tries in all, the first included.")
    initial_backoff_s: float = Field(0.2, gt=0.0, le=60.0)
    max_backoff_s: float = Field(2.0, gt=0.0, le=600.0)
    multiplier: float = Field(2.0, ge=1.0, le=10.0)

    @model_validator(mode="after")
    def _initial_within_max(self) -> "RetryConfig":
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError(
                f"initial_backoff_s ({self.initial_backoff_s}) must not exceed max_backoff_s ({self.max_backoff_s})"
            )
        return self


class SocialConfig(Section):
    """How long faces ingested from social media are kept (each face's expiry is set when it is stored)."""

    retention_days: int = Field(
        SOCIAL_RETENTION_MAX_DAYS,
        ge=1,
        le=SOCIAL_RETENTION_MAX_DAYS,
        description=f"Days an ingested face is kept; at most {SOCIAL_RETENTION_MAX_DAYS}, by policy. Expired faces"
        " are not searched and are purged.",
    )


Backend = Annotated[LiteBackendConfig | ServerBackendConfig, Field(discriminator="type")]


class GalleryConfig(Section):
    """Where the watchlist and social-media faces live and how they are searched."""

    backend: Backend = LiteBackendConfig()
    consistency: Literal["Strong", "Bounded"] = Field(
        "Bounded",
        description="Consistency of searches: Bounded in serving, Strong in tests. Management calls are always Strong.",
    )
    top_k: int = Field(
        16,
        ge=1,
        le=1024,
        description="Candidates the primary model shortlists per face; the second-stage models rescore them.",
    )
    timeouts: TimeoutsConfig = TimeoutsConfig()
    retry: RetryConfig = RetryConfig()
    social: SocialConfig = SocialConfig()

    @model_validator(mode="before")
    @classmethod
    def _no_catalogue_file(cls, data: object) -> object:
        """The catalogue moved into the records database: a configured file is refused with how to bring it over."""
        if isinstance(data, dict) and "catalogue_path" in data:
            raise ValueError(
                "catalogue_path is no longer used: the watchlist catalogue lives in the records database"
                f" (database.url). Copy the file in once with `lfr db import-catalogue {data['catalogue_path']}`"
                " (after `lfr db upgrade`), then delete gallery.catalogue_path from the configuration"
            )
        return data

    @model_validator(mode="after")
    def _ef_covers_top_k(self) -> "GalleryConfig":
        if self.backend.index.ef < self.top_k:
            raise ValueError(
                f"backend.index.ef ({self.backend.index.ef}) must be at least top_k ({self.top_k}):"
                " HNSW cannot return more candidates than it explores"
            )
        return self
