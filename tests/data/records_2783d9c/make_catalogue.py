"""Writes a watchlist catalogue file with the code of commit 2783d9c, for tests/test_migrations.py.

Then each host kept its catalogue in a SQLite file of its own (`gallery.catalogue_path`). Run
from a copy of that commit, not from this tree:

    mkdir /tmp/old && git archive 2783d9c cluster tests | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/records_2783d9c/make_catalogue.py tests/data/records_2783d9c/catalogue.sql

It writes two watchlists (one past 2038), committed, failed and pending enrolment batches with
the photo keys of a bulk import, and versions frozen with and without a calibrated threshold,
then dumps the file as SQL text (`catalogue.sql`). That release kept no per-entry fingerprints,
so the file has no `version_entries` table.
"""

import hashlib
import sqlite3
import sys
import tempfile
from pathlib import Path

from cluster.gallery.catalogue import Catalogue
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.records import Watchlist
from cluster.matching.calibration import CalibratedThreshold

T0 = 1_760_000_000
FAR_FUTURE = 4_102_444_800


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalogue.sqlite"
        catalogue = Catalogue(path)
        catalogue.create_watchlist(
            Watchlist(
                "west_end", "West End", "Wanted for robbery, warrant 17/2025", "Supt. A Rahman", T0, T0 + 90 * 86_400
            )
        )
        catalogue.create_watchlist(
            Watchlist("missing", "Missing people", "Vulnerable missing persons", "Ch Insp. B Ode", T0 + 10, FAR_FUTURE)
        )
        photo = hashlib.sha256(b"enrolment photo").hexdigest()
        keys = [EnrolmentKey(f"P{n}", photo, 0) for n in range(1, 4)]
        first = catalogue.begin_batch("west_end", T0 + 20)
        catalogue.finish_batch(
            "west_end", first, committed=True, entries=3, keys=[(k, f"e-{k.person_id}") for k in keys]
        )
        failed = catalogue.begin_batch("west_end", T0 + 30)
        catalogue.finish_batch("west_end", failed, committed=False, entries=0)
        third = catalogue.begin_batch("west_end", T0 + 40)
        catalogue.finish_batch("west_end", third, committed=True, entries=2)
        catalogue.begin_batch("west_end", T0 + 50)
        max_batch, excluded = catalogue.frozen_bounds("west_end", T0 + 60)
        catalogue.add_version("west_end", max_batch, excluded, 5, "digest-west-end-1", T0 + 60)
        calibration = CalibratedThreshold(0.612, 0.001, 5, 0.0002, 0.94, "arcface+faceres", "cohort-0123")
        catalogue.add_version("west_end", max_batch, excluded, 5, "digest-west-end-1", T0 + 70, calibration)
        batch = catalogue.begin_batch("missing", T0 + 80)
        catalogue.finish_batch("missing", batch, committed=True, entries=1)
        catalogue.add_version("missing", batch, (), 1, "digest-missing-1", T0 + 90)
        connection = sqlite3.connect(path)
        out.write_text("\n".join(connection.iterdump()) + "\n")
        connection.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
