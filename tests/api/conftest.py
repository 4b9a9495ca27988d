"""A real control-room server on 127.0.0.1 over a real alert store (SQLite; PostgreSQL where asked)."""

from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI

from cluster.alerts.store import AlertStore
from cluster.api.app import create_app
from cluster.api.keys import IssuedKey, Role
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.api.social_search import SocialSearches
from cluster.audit.log import AuditLog
from cluster.audit.sealing import Sealer
from cluster.config import LfrConfig
from cluster.control_room.config import ServeConfig
from cluster.database.engine import Database
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.api.factories import write_watchlist_photos

REQUEST_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.02
KEEPALIVE_S = 0.3
LAX_LIMITS = ServeConfig(
    requests_per_client="100000/second",
    refusals_per_client="100000/minute",
    public_requests_per_client="100000/second",
)
"""For tests of routes, which make many requests (refused ones too) from one address; the abuse tests use the
defaults."""


@dataclass
class ControlRoom:
    """A running server, the store behind it, and a key for each role."""

    url: str
    app: FastAPI
    store: AlertStore
    services: ControlRoomServices
    operator: IssuedKey
    supervisor: IssuedKey

    @property
    def audit(self) -> AuditLog:
        return self.store.audit

    def call(self, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=REQUEST_TIMEOUT_S, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.call("GET", path, self.operator.token if token is None else token, **kwargs)

    def post(self, path: str, json=None, token: str | None = None, **kwargs) -> requests.Response:
        return self.call("POST", path, self.operator.token if token is None else token, json=json, **kwargs)


@pytest.fixture(scope="module")
def postgres():
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture
def database(request, tmp_path):
    """SQLite by default; parametrize `database` indirectly with "postgresql" for a throwaway server."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        target = tmp_path / "records.sqlite3"
    else:
        target = request.getfixturevalue("postgres").create_database()
    with Database(target) as db:
        yield db


def start_control_room(
    database: Database,
    photos_root: Path,
    *,
    serve: ServeConfig = LAX_LIMITS,
    sealer: Sealer | None = None,
    trusted_proxies: tuple[str, ...] = (),
    social: LfrConfig | None = None,
    **app_options,
) -> tuple[ApiServer, ControlRoom]:
    """A control room over `database`; with `social` (a configuration whose records database is `database`), social
    searches on that configuration's gallery, as `lfr serve` sets them up."""
    audit = AuditLog(database, sealer)
    store = AlertStore(database, audit)
    photos = FolderWatchlistPhotos(write_watchlist_photos(photos_root))
    searches = None if social is None else SocialSearches(social, audit)
    services = ControlRoomServices.over(store, photos, serve=serve, social=searches)
    operator = services.keys.add_user("pc.operator", Role.OPERATOR, actor="cli:test")
    supervisor = services.keys.add_user("sgt.supervisor", Role.SUPERVISOR, actor="cli:test")
    app = create_app(services, poll_interval_s=POLL_INTERVAL_S, keepalive_s=KEEPALIVE_S, **app_options)
    server = ApiServer(app, port=0, trusted_proxies=trusted_proxies).start()
    return server, ControlRoom(server.url, app, store, services, operator, supervisor)


@pytest.fixture
def control_room(database, tmp_path):
    server, room = start_control_room(database, tmp_path / "photos")
    try:
        yield room
    finally:
        server.stop()
