"""Alert store latency: listing 10k alerts with filters, through the store's API, on SQLite or PostgreSQL.

    python -m loadtest.bench_alert_store [--alerts 10000] [--rounds 300] [--postgres | --db URL_OR_PATH]

Fills a new database through `AlertStore.save` (each alert a transaction with its audit entry,
as the Coordinator writes them) with alerts spread over 4 deployments, 12 cameras, 400 people
and 31 days, one to three sightings each with a real face crop (an lfw10 photo cropped to the
face and re-encoded, about 4 KB) and an embedding; a third are acknowledged and a fifth
decided. Then times each query `--rounds` times (with a varying filter value where it has
one) and prints p50 / p99 / max. Target: p99 <= 100 ms for a 50-alert page with filters.

`--postgres` starts a throwaway PostgreSQL server (fsync on) on 127.0.0.1 and runs VACUUM
(ANALYZE) after the fill, as autovacuum would have on a store that has been running; `--db`
uses an existing empty database. Default: a SQLite file in a temporary folder. The load
average is printed too: on a shared machine, other work shows up in the tail latencies.
"""

import argparse
import io
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.alerts.query import AlertFilter, AlertPage
from cluster.alerts.store import AlertStore
from cluster.audit.log import AuditLog
from cluster.crowd.photos import LFW10
from cluster.database.engine import Database
from loadtest.machine import describe_machine, peak_rss_mib
from loadtest.postgres_server import PostgresServer

FACES = LFW10
DEPLOYMENTS = ("west_end", "soho", "camden", "brixton")
CAMERAS = tuple(f"cam_{n:02d}" for n in range(12))
PEOPLE = 400
SPAN_S = 31 * 86_400.0
NOW = 1_760_000_000.0
PAGE = 50
TARGET_P99_MS = 100.0


def face_crops() -> list[bytes]:
    """Face-sized JPEG crops of the lfw10 photos (their faces sit in the centre)."""
    crops = []
    for path in sorted(FACES.glob("*/*.jpg")):
        with Image.open(path) as image:
            face = image.convert("RGB").crop((75, 60, 175, 185)).resize((96, 120))
        buffer = io.BytesIO()
        face.save(buffer, format="JPEG", quality=90)
        crops.append(buffer.getvalue())
    return crops


def make_alert(n: int, rng: random.Random, crops: list[bytes]) -> Alert:
    person = f"person-{rng.randrange(PEOPLE)}"
    created = NOW - SPAN_S + rng.random() * SPAN_S
    sightings = []
    for k in range(rng.choice((1, 1, 2, 3))):
        first_seen = created - 5.0 + k * 120.0
        embedding = np.asarray(np.random.default_rng(n * 4 + k).normal(size=128), dtype=np.float32)
        sightings.append(
            Sighting(
                sighting_id=f"{rng.choice(CAMERAS)}:{n}:{k}",
                camera_id=rng.choice(CAMERAS),
                person_id=person,
                watchlist_id="wanted",
                similarity=0.92 + rng.random() * 0.07,
                first_seen=first_seen,
                last_seen=first_seen + rng.random() * 8,
                frames=rng.randrange(3, 40),
                embedding=embedding / np.linalg.norm(embedding),
                crop_jpeg=rng.choice(crops),
                box=np.array([100.0, 80.0, 180.0, 190.0]),
            )
        )
    return Alert(
        alert_id=f"alert-{n:06d}",
        deployment_id=rng.choice(DEPLOYMENTS),
        person_id=person,
        watchlist_id="wanted",
        state=AlertState.NEW,
        sightings=tuple(sightings),
        confidence=0.9 + rng.random() * 0.1,
        created_at=created,
        updated_at=created,
        threshold=0.92,
        model="dlib_resnet_v1",
    )


def fill(store: AlertStore, count: int) -> tuple[float, float]:
    """Save `count` alerts and decide some; returns saves per second and transitions per second."""
    rng, crops = random.Random(7), face_crops()
    alerts = [make_alert(n, rng, crops) for n in range(count)]
    start = time.perf_counter()
    for alert in alerts:
        store.save(alert)
    saves_per_s = count / (time.perf_counter() - start)
    transitions = 0
    start = time.perf_counter()
    for alert in alerts:
        roll = rng.random()
        if roll < 0.33:
            store.transition(alert.alert_id, "acknowledged", "PC 1234 Khan", at=alert.created_at + 30)
            transitions += 1
            if roll < 0.2:
                outcome = "confirmed" if roll < 0.17 else "rejected"
                store.transition(alert.alert_id, outcome, "PC 1234 Khan", "checked", at=alert.created_at + 600)
                transitions += 1
    return saves_per_s, transitions / (time.perf_counter() - start)


def settle(database: Database) -> None:
    """On PostgreSQL, do what autovacuum would have done by now on a store that has run a while."""
    if database.backend == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")


def timed(call: Callable[[int], object], rounds: int) -> list[float]:
    call(0)
    times = []
    for n in range(rounds):
        start = time.perf_counter()
        call(n)
        times.append((time.perf_counter() - start) * 1000)
    return times


def queries(store: AlertStore, count: int) -> dict[str, Callable[[int], object]]:
    deep = store.list(AlertFilter(), limit=1000)
    for _ in range(4):
        deep = store.list(AlertFilter(), limit=1000, cursor=deep.next_cursor)
    day = 86_400.0
    return {
        "page, no filter": lambda n: store.list(AlertFilter(), limit=PAGE),
        "page, state new": lambda n: store.list(AlertFilter(states=(AlertState.NEW,)), limit=PAGE),
        "page, deployment + decided": lambda n: store.list(
            AlertFilter(states=("confirmed", "rejected"), deployment_id=DEPLOYMENTS[n % 4]), limit=PAGE
        ),
        "page, camera": lambda n: store.list(AlertFilter(camera_id=CAMERAS[n % 12]), limit=PAGE),
        "page, person": lambda n: store.list(AlertFilter(person_id=f"person-{n % PEOPLE}"), limit=PAGE),
        "page, deployment + one day": lambda n: store.list(
            AlertFilter(deployment_id=DEPLOYMENTS[n % 4], since=NOW - (n % 30 + 1) * day, until=NOW - (n % 30) * day),
            limit=PAGE,
        ),
        "page, deployment + camera + new + week": lambda n: store.list(
            AlertFilter(
                states=(AlertState.NEW,),
                deployment_id=DEPLOYMENTS[n % 4],
                camera_id=CAMERAS[n % 12],
                since=NOW - 7 * day,
            ),
            limit=PAGE,
        ),
        "page 101 (cursor after 5,000)": lambda n: store.list(AlertFilter(), limit=PAGE, cursor=deep.next_cursor),
        "count, deployment + decided": lambda n: store.count(
            AlertFilter(states=("confirmed", "rejected"), deployment_id=DEPLOYMENTS[n % 4])
        ),
        "get one alert": lambda n: store.get(f"alert-{(n * 7919) % count:06d}"),
        "open alerts, last hour": lambda n: store.open_alerts(DEPLOYMENTS[n % 4], NOW - 3600),
        "stats, one deployment": lambda n: store.stats(DEPLOYMENTS[n % 4]),
    }


def rows_of(result: object) -> int:
    if isinstance(result, AlertPage):
        return len(result.alerts)
    return len(result) if isinstance(result, list) else 1


def walk_all(store: AlertStore, page_size: int = 500) -> tuple[int, float]:
    start, seen, cursor = time.perf_counter(), 0, None
    while True:
        page = store.list(AlertFilter(), limit=page_size, cursor=cursor)
        seen += len(page.alerts)
        if page.next_cursor is None:
            return seen, time.perf_counter() - start
        cursor = page.next_cursor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="Start a throwaway PostgreSQL server on 127.0.0.1.")
    where.add_argument("--db", help="An existing, empty database: file path or postgresql:// URL.")
    args = parser.parse_args()

    with ExitStack() as stack:
        if args.postgres:
            target = stack.enter_context(PostgresServer(durable=True)).create_database()
        elif args.db:
            target = args.db
        else:
            target = str(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.sqlite3")
        database = stack.enter_context(Database(target))
        store = AlertStore(database, AuditLog(database))
        print(describe_machine())
        print(f"database: {database.backend} ({database.describe()})")
        saves_per_s, transitions_per_s = fill(store, args.alerts)
        settle(database)
        total = store.count()
        print(f"filled {total} alerts: {saves_per_s:.0f} saves/s, {transitions_per_s:.0f} transitions/s")
        if database.backend == "sqlite":
            size = sum(p.stat().st_size for p in Path(target).parent.glob(Path(target).name + "*"))
            print(f"database files: {size / 2**20:.0f} MiB")
        print(f"load average before timing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"\n{args.rounds} calls each, {PAGE}-alert pages with sightings, crops and embeddings:\n")
        print(f"| query | rows | p50 ms | p99 ms | max ms | p99 <= {TARGET_P99_MS:.0f} ms |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for name, call in queries(store, total).items():
            rows = rows_of(call(1))
            times = sorted(timed(call, args.rounds))
            p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
            verdict = "met" if p99 <= TARGET_P99_MS else "MISSED"
            print(f"| {name} | {rows} | {statistics.median(times):.1f} | {p99:.1f} | {times[-1]:.1f} | {verdict} |")
        seen, seconds = walk_all(store)
        print(f"\nwalking all {seen} alerts in 500-alert pages: {seconds:.2f} s")
        print(f"audit chain: {store.audit.verify().summary()}")
        print(f"peak RSS {peak_rss_mib():.0f} MiB; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
