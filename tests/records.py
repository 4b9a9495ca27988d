"""A records database at the current schema for tests that need one (the catalogue's, the gallery's).

Opening its audit log once is what brings an empty database to head, as the first `lfr` command does.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster.audit.log import AuditLog
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.gallery import Gallery
from tests.audit_key import TEST_SEALER

RECORDS_FILE = "records.sqlite3"


def records_database(target: str | Path) -> Database:
    """The database at `target` (a SQLite path or a URL), at head, with its audit log's genesis head."""
    database = Database(target)
    AuditLog(database, TEST_SEALER)
    return database


@contextmanager
def opened_gallery(config: LfrConfig) -> Iterator[Gallery]:
    """The configured gallery over the catalogue in the configured records database (made at head if empty)."""
    database = records_database(config.database.url)
    try:
        with Gallery.open(config.gallery, Catalogue(database)) as gallery:
            yield gallery
    finally:
        database.close()
