"""Control-room API load: alert stream fan-out to 50 clients, then listing 10k alerts with filters over HTTP.

    python -m loadtest.bench_api [--clients 50] [--rate 100] [--seconds 10] [--alerts 10000] [--rounds 200]
                                 [--postgres]

Three processes, as in a deployment: the API server (`lfr serve`'s app under uvicorn, default
poll interval), a writer standing in for the pipeline's Coordinator (`AlertStore.save` at
`--rate` alerts per second, each with a real face crop, committing with its audit entry and
event), and this process with `--clients` SSE clients on asyncio sockets.

Fan-out: every client must receive every event exactly once and in order; delivery latency is the
time from the writer's commit returning to a client parsing the event (one clock: one machine).
Target: p99 <= 200 ms, none lost.

Listing: the store is then filled to `--alerts` alerts (loadtest.bench_alert_store's fill: 4
deployments, 12 cameras, 400 people, 31 days, a third acknowledged, a fifth decided) and each
filtered listing is requested `--rounds` times through HTTP with an operator's key, so every
request pays authentication and its audit entry. Target: p99 <= 100 ms for a 50-alert page.
"""

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import requests

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.alerts.store import AlertStore
from cluster.api.app import create_app
from cluster.api.keys import ApiKeys, Role
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from loadtest.bench_alert_store import CAMERAS, DEPLOYMENTS, NOW, PAGE, PEOPLE, face_crops, fill, settle
from loadtest.postgres_server import PostgresServer

FANOUT_TARGET_P99_MS = 200.0
LIST_TARGET_P99_MS = 100.0
CONNECT_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 30.0
DAY = 86_400.0


def describe_machine() -> str:
    """What loadtest.machine says, without importing torch (which this benchmark does not use)."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{platform.machine()} {os.cpu_count()} cores, no GPU used, Python {platform.python_version()}, load {load}"


def serve(target: str, port_file: str) -> None:
    """The API server process: the app `lfr serve` runs, on a free loopback port written to port_file."""
    database = Database(target)
    audit = AuditLog(database)
    services = ControlRoomServices.over(AlertStore(database, audit), FolderWatchlistPhotos(None))
    server = ApiServer(create_app(services), port=0)
    Path(port_file).write_text(str(server.port))
    server.run()


def write_alerts(target: str, rate: float, seconds: float, times_file: str) -> None:
    """The writer process: `rate` alerts per second for `seconds`, each save's return time recorded."""
    database = Database(target)
    store = AlertStore(database, AuditLog(database))
    crops = face_crops()
    count = int(rate * seconds)
    committed: dict[str, float] = {}
    start = time.perf_counter()
    for n in range(count):
        due = start + n / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        alert = live_alert(n, crops)
        store.save(alert)
        committed[alert.alert_id] = time.time()
    Path(times_file).write_text(json.dumps(committed))


def live_alert(n: int, crops: list[bytes]) -> Alert:
    now = time.time()
    rng = np.random.default_rng(n)
    embedding = rng.normal(size=128).astype(np.float32)
    camera = CAMERAS[n % len(CAMERAS)]
    sighting = Sighting(
        sighting_id=f"{camera}:live-{n}",
        camera_id=camera,
        person_id=f"person-{n % PEOPLE}",
        watchlist_id="wanted",
        similarity=0.95,
        first_seen=now - 4.0,
        last_seen=now - 1.0,
        frames=12,
        embedding=embedding / np.linalg.norm(embedding),
        crop_jpeg=crops[n % len(crops)],
        box=np.array([100.0, 80.0, 180.0, 190.0]),
    )
    return Alert(
        alert_id=f"live-{n:06d}",
        deployment_id=DEPLOYMENTS[0],
        person_id=sighting.person_id,
        watchlist_id="wanted",
        state=AlertState.NEW,
        sightings=(sighting,),
        confidence=0.95,
        created_at=now,
        updated_at=now,
        threshold=0.92,
        model="dlib_resnet_v1",
    )


class SseClient:
    """One stream over a raw HTTP/1.0 connection (the body then ends only with the connection, unchunked)."""

    def __init__(self, port: int, token: str, after_id: int) -> None:
        self.port, self.token, self.after_id = port, token, after_id
        self.received: list[tuple[int, str, float]] = []
        self.connected = asyncio.Event()

    async def run(self, expected: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        request = (
            f"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
            f"Last-Event-ID: {self.after_id}\r\nAccept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"the event stream answered {status!r}")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        self.connected.set()
        event_id, data = None, None
        try:
            while len(self.received) < expected:
                line = (await reader.readline()).rstrip(b"\r\n")
                if line.startswith(b"id: "):
                    event_id = int(line[4:])
                elif line.startswith(b"data: "):
                    data = line[6:]
                elif not line and data is not None:
                    self.received.append((event_id, json.loads(data)["alert_id"], time.time()))
                    event_id, data = None, None
        finally:
            writer.close()


async def fan_out(port: int, token: str, clients: int, expected: int, start_writer) -> list[SseClient]:
    """Connect the clients, run the writer, collect what each client received.

    The garbage collector is off in this, the measuring process, while it runs: its full passes
    over the growing lists of receipts would otherwise show up as delivery latency.
    """
    streams = [SseClient(port, token, 0) for _ in range(clients)]
    gc.disable()
    try:
        tasks = [asyncio.create_task(stream.run(expected)) for stream in streams]
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in streams)), CONNECT_TIMEOUT_S)
        writer = start_writer()
        await asyncio.to_thread(writer.join)
        done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    finally:
        gc.enable()
    for task in pending:
        task.cancel()
    for task in done:
        task.result()
    return streams


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def report_fan_out(streams: list[SseClient], committed: dict[str, float], expected: int) -> bool:
    order = sorted(committed, key=committed.get)
    latencies, lost, repeated, out_of_order = [], 0, 0, 0
    for stream in streams:
        alert_ids = [alert_id for _, alert_id, _ in stream.received]
        ids = [event_id for event_id, _, _ in stream.received]
        lost += len(set(order) - set(alert_ids))
        repeated += len(alert_ids) - len(set(alert_ids))
        out_of_order += sum(1 for a, b in zip(ids, ids[1:]) if b <= a)
        latencies += [(at - committed[alert_id]) * 1000 for _, alert_id, at in stream.received]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"fan-out: {len(streams)} clients x {expected} alerts: {len(latencies)} deliveries, lost {lost},"
        f" repeated {repeated}, out of order {out_of_order}"
    )
    print(f"  delivery latency ms: p50 {p50:.1f}  p99 {p99:.1f}  max {max(latencies):.1f}")
    met = lost == repeated == out_of_order == 0 and p99 <= FANOUT_TARGET_P99_MS
    print(f"  target p99 <= {FANOUT_TARGET_P99_MS:g} ms and nothing lost: {'met' if met else 'NOT met'}")
    return met


def listing_queries() -> dict[str, dict]:
    return {
        "page, no filter": {},
        "page, state new": {"state": "new"},
        "page, deployment + confirmed/rejected": {"deployment_id": DEPLOYMENTS[1], "state": ["confirmed", "rejected"]},
        "page, camera": {"camera_id": CAMERAS[5]},
        "page, person": {"person_id": "person-17"},
        "page, deployment + one day": {"deployment_id": DEPLOYMENTS[2], "since": NOW - 3 * DAY, "until": NOW - 2 * DAY},
        "page, deployment + camera + new + week": {
            "deployment_id": DEPLOYMENTS[0],
            "camera_id": CAMERAS[3],
            "state": "new",
            "since": NOW - 7 * DAY,
        },  # fmt: skip
    }


def report_listing(url: str, token: str, rounds: int, count: int) -> bool:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    deep = None
    for _ in range(100):
        page = session.get(url + "/alerts", params={"limit": PAGE, **({"cursor": deep} if deep else {})}, timeout=10)
        deep = page.json()["next_cursor"]
    queries = listing_queries() | {"page 101 (cursor after 5,000)": {"cursor": deep}}
    met = True
    print(f"listing over HTTP ({count:,} alerts, {PAGE}-alert pages, {rounds} requests each), ms:")
    for name, params in queries.items():
        times, rows = [], 0
        for n in range(rounds + 1):
            start = time.perf_counter()
            response = session.get(url + "/alerts", params={"limit": PAGE, **params}, timeout=10)
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            rows = len(response.json()["alerts"])
            if n:
                times.append(elapsed)
        p99 = percentile(times, 99)
        met &= p99 <= LIST_TARGET_P99_MS
        print(
            f"  {name:<42} rows {rows:>3}  p50 {statistics.median(times):6.1f}  p99 {p99:6.1f}  max {max(times):6.1f}"
        )
    print(f"  target p99 <= {LIST_TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="Alerts per second written during fan-out.")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="Use a throwaway PostgreSQL server on 127.0.0.1.")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lfr-bench-api-")))
        if args.postgres:
            target = stack.enter_context(PostgresServer(durable=True)).create_database()
        else:
            target = str(folder / "records.sqlite3")
        database = stack.enter_context(Database(target))
        store = AlertStore(database, AuditLog(database))
        token = ApiKeys(store.audit).add_user("pc.bench", Role.OPERATOR, actor="cli:bench").token
        print(describe_machine())
        print(f"database: {database.describe()}")

        port_file = folder / "port"
        server = context.Process(target=serve, args=(target, str(port_file)), daemon=True)
        server.start()
        stack.callback(server.terminate)
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not port_file.is_file() or not port_file.read_text():
            if time.monotonic() > deadline or not server.is_alive():
                raise RuntimeError("the API server process did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        url = f"http://127.0.0.1:{port}"
        requests.get(url + "/me", headers={"Authorization": f"Bearer {token}"}, timeout=CONNECT_TIMEOUT_S)

        expected = int(args.rate * args.seconds)
        times_file = folder / "committed.json"

        def start_writer():
            writer = context.Process(target=write_alerts, args=(target, args.rate, args.seconds, str(times_file)))
            writer.start()
            return writer

        streams = asyncio.run(fan_out(port, token, args.clients, expected, start_writer))
        fan_out_met = report_fan_out(streams, json.loads(times_file.read_text()), expected)

        started = time.perf_counter()
        fill(store, args.alerts - expected)
        settle(database)
        print(f"filled to {store.count():,} alerts in {time.perf_counter() - started:.0f} s")
        listing_met = report_listing(url, token, args.rounds, store.count())
        print(describe_machine())
    raise SystemExit(0 if fan_out_met and listing_met else 1)


if __name__ == "__main__":
    main()
