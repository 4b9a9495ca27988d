"""One of the processes of the concurrent-enrolment test: opens the gallery and enrols 10 batches of 10.

    python -m tests.gallery.enrol_worker CONFIG_JSON DATABASE_URL WATCHLIST_ID WORKER RESULT_JSON

The catalogue is the one in the records database at DATABASE_URL, which the test process shares.
Writes {"entry_ids": [...], "batches": [...]} to RESULT_JSON (stdout carries the gallery's logs).
"""

import json
import sys
from pathlib import Path

from cluster.database.config import DatabaseConfig
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig
from cluster.gallery.gallery import Gallery
from tests.gallery.factories import entry, unit_vectors

BATCHES = 10
BATCH_SIZE = 10


def main() -> None:
    config_path, database_url, watchlist_id = sys.argv[1:4]
    worker, result_path = int(sys.argv[4]), sys.argv[5]
    config = GalleryConfig.model_validate_json(Path(config_path).read_text())
    vectors = unit_vectors(BATCHES * BATCH_SIZE, seed=1000 + worker)
    entry_ids: list[str] = []
    batches: list[int] = []
    catalogue = Catalogue.from_config(DatabaseConfig(url=database_url))
    with Gallery.open(config, catalogue) as gallery:
        for batch in range(BATCHES):
            rows = vectors[batch * BATCH_SIZE : (batch + 1) * BATCH_SIZE]
            entries = [entry(f"w{worker}-b{batch}-{i}", vector) for i, vector in enumerate(rows)]
            enrolment = gallery.watchlists.enrol(watchlist_id, entries)
            entry_ids.extend(enrolment.entry_ids)
            batches.append(enrolment.batch)
    Path(result_path).write_text(json.dumps({"entry_ids": entry_ids, "batches": batches}))


if __name__ == "__main__":
    main()
