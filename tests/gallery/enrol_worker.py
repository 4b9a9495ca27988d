"""One of the processes of the concurrent-enrolment test: opens the gallery and enrols 10 batches of 10.

    python -m tests.gallery.enrol_worker CONFIG_JSON WATCHLIST_ID WORKER RESULT_JSON

Writes {"entry_ids": [...], "batches": [...]} to RESULT_JSON (stdout carries the gallery's logs).
"""

import json
import sys
from pathlib import Path

from cluster.gallery.config import GalleryConfig
from cluster.gallery.gallery import Gallery
from tests.gallery.factories import entry, unit_vectors

BATCHES = 10
BATCH_SIZE = 10


def main() -> None:
    config_path, watchlist_id, worker, result_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    config = GalleryConfig.model_validate_json(Path(config_path).read_text())
    vectors = unit_vectors(BATCHES * BATCH_SIZE, seed=1000 + worker)
    entry_ids: list[str] = []
    batches: list[int] = []
    with Gallery.open(config) as gallery:
        for batch in range(BATCHES):
            rows = vectors[batch * BATCH_SIZE : (batch + 1) * BATCH_SIZE]
            entries = [entry(f"w{worker}-b{batch}-{i}", vector) for i, vector in enumerate(rows)]
            enrolment = gallery.watchlists.enrol(watchlist_id, entries)
            entry_ids.extend(enrolment.entry_ids)
            batches.append(enrolment.batch)
    Path(result_path).write_text(json.dumps({"entry_ids": entry_ids, "batches": batches}))


if __name__ == "__main__":
    main()
