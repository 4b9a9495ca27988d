"""What the API's routes work with, built once per server from the records database."""

from dataclasses import dataclass

from fastapi import Request

from cluster.alerts.config import RetentionConfig
from cluster.alerts.events import AlertEventLog
from cluster.alerts.store import AlertStore
from cluster.api.keys import ApiKeys
from cluster.api.photos import WatchlistPhotos
from cluster.api.social_search import SocialSearches
from cluster.audit.log import AuditLog
from cluster.cases.store import CaseStore
from cluster.control_room.config import ServeConfig
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.records import DeploymentRecords
from cluster.gallery.catalogue import Catalogue
from cluster.live.status_board import StatusBoard


@dataclass(frozen=True)
class ControlRoomServices:
    """The alert store, event log, keys, status board and watchlist photos the API serves from, the deployment
    records and watchlist catalogue the public records are read from, the cases of retrospective and social
    searches, and the social searches officers run from the page.

    deployment: the deployment this server's configuration authorises (None: none configured).
    serve: the server's own limits (stream lifetime, body size, rates, key lifetime).
    social: social searches on the configured gallery (None: this server runs none; `lfr serve` always sets it up).
    """

    store: AlertStore
    events: AlertEventLog
    keys: ApiKeys
    board: StatusBoard
    photos: WatchlistPhotos
    retention: RetentionConfig
    records: DeploymentRecords
    catalogue: Catalogue
    cases: CaseStore
    deployment: DeploymentConfig | None = None
    serve: ServeConfig = ServeConfig()
    social: SocialSearches | None = None

    @classmethod
    def over(
        cls,
        store: AlertStore,
        photos: WatchlistPhotos,
        retention: RetentionConfig | None = None,
        deployment: DeploymentConfig | None = None,
        serve: ServeConfig | None = None,
        social: SocialSearches | None = None,
    ) -> "ControlRoomServices":
        """The services on the store's database and audit log."""
        serve = serve or ServeConfig()
        return cls(
            store=store,
            events=AlertEventLog(store.database),
            keys=ApiKeys(store.audit, key_lifetime_days=serve.key_lifetime_days),
            board=StatusBoard(store.database),
            photos=photos,
            retention=retention or RetentionConfig(),
            records=DeploymentRecords(store.audit),
            catalogue=Catalogue(store.database),
            cases=CaseStore(store.database, store.audit),
            deployment=deployment,
            serve=serve,
            social=social,
        )

    @property
    def audit(self) -> AuditLog:
        return self.store.audit


def services(request: Request) -> ControlRoomServices:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
