"""A flood of refused requests against the control room, and what it costs the pipeline's alert writes.

    python -m loadtest.bench_abuse [--seconds 10] [--threads 8] [--processes 2] [--flood-rate 0] [--rate 20]
                                   [--refusals-per-client 20/minute] [--requests-per-client 100/second]
                                   [--postgres]

Three kinds of process, as in a deployment under attack: the API server (`lfr serve`'s app under
uvicorn, with the given limits), `--processes` flooding processes of `--threads` threads each,
sending requests with bad credentials (none, garbage, an unknown key) as fast as they are
answered (or at `--flood-rate` requests per second in all, to compare equal floods), and this
process, which writes alerts through `AlertStore.save` at `--rate` per
second as the Coordinator does (a real face crop each, committing with its audit entry and
event) and times each save.

The writer runs twice in this process: first for `--seconds` with no flood (the quiet
baseline), then for `--seconds` during the flood. Printed: refusals absorbed per second
(401s and 429s), the 429s, any other status, the audit rows the flood wrote (counted after the
server's shutdown, which flushes the counts), and the writer's save latency p50 / p99 / max,
quiet against flooded.
"""

import argparse
import multiprocessing
import os
import platform
import signal
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import requests
import sqlalchemy as sa

from cluster.alerts.store import AlertStore
from cluster.api.app import create_app
from cluster.api.keys import ANONYMOUS
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.audit.log import AuditLog
from cluster.audit.tables import audit_log
from cluster.control_room.config import ServeConfig
from cluster.database.engine import Database
from loadtest.bench_alert_store import face_crops
from loadtest.bench_api import live_alert
from loadtest.postgres_server import PostgresServer

CONNECT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Bearer lfr_0123456789ab_" + "A" * 43},
]


def describe_machine() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{platform.machine()} {os.cpu_count()} cores, no GPU used, Python {platform.python_version()}, load {load}"


def serve(target: str, port_file: str, requests_per_client: str, refusals_per_client: str) -> None:
    """The API server process, with the given limits, on a free loopback port written to port_file."""
    database = Database(target)
    audit = AuditLog(database)
    limits = ServeConfig(requests_per_client=requests_per_client, refusals_per_client=refusals_per_client)
    services = ControlRoomServices.over(AlertStore(database, audit), FolderWatchlistPhotos(None), serve=limits)
    server = ApiServer(create_app(services), port=0)
    Path(port_file).write_text(str(server.port))
    try:
        server.run()
    except KeyboardInterrupt:
        pass


def flood(url: str, threads: int, seconds: float, rate: float, counts_file: str, ready, go) -> None:
    """A flooding process: `threads` threads sending refused requests for `seconds`, at `rate` a second each
    (0: back to back), from when `go` is set (after `ready`, so its start-up does not count against the writer)."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    ready.set()
    go.wait()

    def worker(n: int) -> None:
        session = requests.Session()
        start = time.monotonic()
        ends = start + seconds
        mine: Counter[int] = Counter()
        sent = 0
        while time.monotonic() < ends:
            if rate > 0:
                time.sleep(max(0.0, start + sent / rate - time.monotonic()))
            sent += 1
            headers = BAD_CREDENTIALS[n % len(BAD_CREDENTIALS)]
            mine[session.get(url + "/alerts", headers=headers, timeout=30).status_code] += 1
            n += 1
        with lock:
            statuses.update(mine)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    Path(counts_file).write_text(" ".join(f"{status}:{count}" for status, count in statuses.items()))


def write_alerts(store: AlertStore, rate: float, seconds: float, first: int, crops: list[bytes]) -> list[float]:
    """Save `rate` alerts a second for `seconds`; each save's latency in ms."""
    latencies = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        store.save(live_alert(first + n, crops))
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def summary(latencies: list[float], rate: float) -> str:
    """Percentiles, and when (seconds into the run) the three slowest saves started."""
    values = np.asarray(latencies)
    slowest = ", ".join(f"{n / rate:.1f} s" for n in np.argsort(values)[-3:][::-1])
    return (
        f"p50 {np.percentile(values, 50):6.1f}  p99 {np.percentile(values, 99):6.1f}  max {values.max():7.1f} ms"
        f"  ({len(values)} saves; slowest at {slowest})"
    )


def anonymous_rows(database: Database) -> int:
    with database.reading() as connection:
        query = sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.actor == ANONYMOUS)
        return connection.execute(query).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of the quiet run and of the flood.")
    parser.add_argument("--threads", type=int, default=8, help="Flooding threads per flooding process.")
    parser.add_argument("--processes", type=int, default=2, help="Flooding processes.")
    parser.add_argument("--flood-rate", type=float, default=0.0, help="Flood requests per second in all; 0: no cap.")
    parser.add_argument("--rate", type=float, default=20.0, help="Alerts saved per second by the writer.")
    parser.add_argument("--refusals-per-client", default=ServeConfig().refusals_per_client)
    parser.add_argument("--requests-per-client", default=ServeConfig().requests_per_client)
    parser.add_argument("--postgres", action="store_true", help="Use a throwaway PostgreSQL server on 127.0.0.1.")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lfr-bench-abuse-")))
        if args.postgres:
            target = stack.enter_context(PostgresServer(durable=True)).create_database()
        else:
            target = str(folder / "records.sqlite3")
        database = stack.enter_context(Database(target))
        store = AlertStore(database, AuditLog(database))
        crops = face_crops()
        print(describe_machine())
        print(f"database: {database.describe()}")
        print(f"limits: {args.requests_per_client} requests, {args.refusals_per_client} refusals per client")

        port_file = folder / "port"
        server = context.Process(
            target=serve, args=(target, str(port_file), args.requests_per_client, args.refusals_per_client)
        )
        server.start()
        stack.callback(lambda: server.is_alive() and server.kill())
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not port_file.is_file() or not port_file.read_text():
            if time.monotonic() > deadline or not server.is_alive():
                raise RuntimeError("the API server process did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        requests.get(url + "/", timeout=CONNECT_TIMEOUT_S).raise_for_status()

        write_alerts(store, args.rate, 1.0, 0, crops)
        quiet = write_alerts(store, args.rate, args.seconds, 1_000_000, crops)

        rows_before = anonymous_rows(database)
        floods = []
        go = context.Event()
        for n in range(args.processes):
            counts_file = folder / f"flood-{n}"
            per_thread = args.flood_rate / (args.processes * args.threads)
            ready = context.Event()
            process = context.Process(
                target=flood, args=(url, args.threads, args.seconds, per_thread, str(counts_file), ready, go)
            )
            process.start()
            floods.append((process, counts_file, ready))
        for _process, _counts_file, ready in floods:
            ready.wait(CONNECT_TIMEOUT_S)
        go.set()
        time.sleep(0.2)
        flooded = write_alerts(store, args.rate, args.seconds, 2_000_000, crops)
        statuses: Counter[int] = Counter()
        for process, counts_file, _ready in floods:
            process.join()
            for pair in counts_file.read_text().split():
                status, count = pair.split(":")
                statuses[int(status)] += int(count)
        os.kill(server.pid, signal.SIGINT)
        server.join(STOP_TIMEOUT_S)
        rows = anonymous_rows(database) - rows_before

        refused = statuses[401] + statuses[429]
        others = {status: count for status, count in statuses.items() if status not in (401, 429)}
        print(f"flood: {args.processes} processes x {args.threads} threads for {args.seconds:g} s")
        print(f"  refusals absorbed: {refused:,} ({refused / args.seconds:,.0f}/s)")
        print(f"  401: {statuses[401]:,}   429: {statuses[429]:,}   other statuses: {others or 'none'}")
        print(f"  audit rows written for them: {rows}")
        print(f"writer (AlertStore.save at {args.rate:g}/s):")
        print(f"  quiet    {summary(quiet, args.rate)}")
        print(f"  flooded  {summary(flooded, args.rate)}")
        print(describe_machine())


if __name__ == "__main__":
    main()
