"""`lfr watchlist import` at watchlist scale: rows per second, wall time, memory, and the re-run.

    python -m loadtest.bench_watchlist_import [--rows 10000] [--photos ../shared/data/faces/lfw-public]
                                              [--work DIR] [--keep]

Builds a manifest of `--rows` rows over the photos under `--photos` (LFW's public split: 2,864
photos of 554 people), reusing each photo under distinct synthetic person ids (bench00000,
bench00001, ...) until the rows are reached, so every row is a distinct (person, photo) key.
Then, on a fresh embedded milvus-lite gallery, catalogue and audit log under `--work`:
`lfr watchlist create`; `lfr watchlist import` (timed: every photo decoded, detected and
embedded, enrolled 256 rows per batch, one audit entry per row); a re-run over the rows it
enrolled (timed: every row skipped, no photo decoded); a re-run of the whole manifest (timed:
the enrolled rows skipped, the refused ones tried again, so their photos are detected again);
and `lfr audit verify`'s chain check over the result.
The commands run in this process through the CLI's own handlers, so the peak RSS printed is
the import's (models included); the milvus-lite server is a process of its own, measured apart.
Photos with no face or several faces are refused, as they would be for real, and counted.
"""

import argparse
import csv
import io
import os
import shutil
import tempfile
import time
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from cluster.audit.log import AuditLog
from cluster.cli import watchlist_commands
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.logging_setup import configure_logging
from cluster.processes import process_memory
from cluster.vision.config import FaceModelsConfig
from cluster.vision.image_io import find_images
from loadtest.machine import describe_machine, peak_rss_mib

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "lfw-public"


def write_manifest(path: Path, photos: list[Path], rows: int) -> None:
    """`rows` rows cycling through the photos, each under its own synthetic person id."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("person_id", "photo", "label", "source"))
        for row in range(rows):
            photo = photos[row % len(photos)]
            writer.writerow((f"bench{row:05d}", photo, photo.parent.name, f"bench: {photo.name}"))


def write_enrolled_rows(manifest: Path, report: Path, path: Path) -> int:
    """The manifest's rows that the report says were enrolled, as a manifest of their own; how many."""
    with report.open(newline="", encoding="utf-8") as file:
        enrolled = {int(row["row"]) for row in csv.DictReader(file) if row["status"] == "enrolled"}
    with manifest.open(newline="", encoding="utf-8") as source, path.open("w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(source), csv.writer(out)
        writer.writerow(next(reader))
        writer.writerows(values for number, values in enumerate(reader, start=2) if number in enrolled)
    return len(enrolled)


def run_lfr(config: LfrConfig, log: Path, *argv: object) -> tuple[int, str, float]:
    """One `lfr` command in this process: (exit status, stdout, seconds); stderr appended to `log`."""
    parser = argparse.ArgumentParser(prog="lfr")
    watchlist_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(arg) for arg in argv])
    out = io.StringIO()
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as err, redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args, config)
    return code, out.getvalue(), time.perf_counter() - started


def statuses(report: Path) -> Counter[str]:
    with report.open(newline="", encoding="utf-8") as file:
        return Counter(row["status"] for row in csv.DictReader(file))


def server_rss_mib(config: LfrConfig) -> float:
    backend = config.gallery.backend
    assert isinstance(backend, LiteBackendConfig)
    running = EmbeddedMilvus(backend, config.gallery.timeouts).running()
    if running is None:
        return float("nan")
    return process_memory(running.pid).resident_bytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--work", type=Path, default=None, help="Folder for the gallery (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args()
    configure_logging("warning")
    photos = find_images([args.photos])
    if not photos:
        raise SystemExit(f"no photos under {args.photos}")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    print(describe_machine())
    print(f"{args.rows:,d} rows over {len(photos):,d} photos of {args.photos}; work folder {work}")
    config = LfrConfig(
        face_models=FaceModelsConfig(),
        gallery=GalleryConfig(backend=LiteBackendConfig(data_dir=work / "milvus")),
        database=DatabaseConfig(url=str(work / "lfr.sqlite3")),
    )
    manifest = work / "manifest.csv"
    write_manifest(manifest, photos, args.rows)
    log = work / "stderr.log"
    embedded = EmbeddedMilvus(config.gallery.backend, config.gallery.timeouts)
    try:
        create = ("watchlist", "create", "bench", "--authorised-by", "bench", "--reason", "bench", "--expires", "+7")
        code, _, _ = run_lfr(config, log, *create)
        assert code == 0, log.read_text()[-2000:]
        load_before = os.getloadavg()[0]
        code, out, first_s = run_lfr(
            config, log, "watchlist", "import", "bench", "--manifest", manifest, "--report", work / "first.csv"
        )
        load_after = os.getloadavg()[0]
        first = statuses(work / "first.csv")
        print(f"import (exit {code}): {out.strip()}")
        print(
            f"  {first_s:,.1f} s wall, {args.rows / first_s:,.1f} rows/s; {first['enrolled']:,d} enrolled,"
            f" {first['refused']:,d} refused (no face or several); load average {load_before:.1f} -> {load_after:.1f}"
        )
        enrolled_rows = write_enrolled_rows(manifest, work / "first.csv", work / "enrolled.csv")
        again = ("watchlist", "import", "bench", "--manifest", work / "enrolled.csv", "--report", work / "skip.csv")
        code, out, skipped_s = run_lfr(config, log, *again)
        skipped = statuses(work / "skip.csv")
        print(f"re-run of the {enrolled_rows:,d} enrolled rows (exit {code}): {out.strip()}")
        print(f"  {skipped_s:,.1f} s wall, {enrolled_rows / skipped_s:,.0f} rows/s; {dict(skipped)}")
        code, out, rerun_s = run_lfr(
            config, log, "watchlist", "import", "bench", "--manifest", manifest, "--report", work / "rerun.csv"
        )
        rerun = statuses(work / "rerun.csv")
        print(f"re-run of the whole manifest (exit {code}): {out.strip()}")
        print(f"  {rerun_s:,.1f} s wall (the {rerun['refused']:,d} refused rows detected again); {dict(rerun)}")
        audit = AuditLog(Database(config.database.url), create=False)
        started = time.perf_counter()
        verified = audit.verify()
        print(
            f"audit: {audit.head().seq:,d} entries, chain {'intact' if verified.ok else 'BROKEN'}"
            f" (verified in {time.perf_counter() - started:.1f} s)"
        )
        print(
            f"peak RSS of the importing process {peak_rss_mib():,.0f} MiB;"
            f" milvus-lite server {server_rss_mib(config):,.0f} MiB at the end"
        )
    finally:
        embedded.stop()
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
