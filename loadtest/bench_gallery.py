"""Gallery search latency and recall, insert throughput and memory, on milvus-lite and a real Milvus server.

    python -m loadtest.bench_gallery [--sizes 10000 100000 1000000] [--backends milvus-lite milvus]
                                     [--ef 64 128] [--queries 200] [--batch-queries 50] [--breakdown]

For each backend and size: a fresh server over a temporary directory; N vectors enrolled into
one watchlist through `Gallery.watchlists.enrol` (in batches of 20,000, so the insert rate
includes our checks and pymilvus' conversion); a flush and a wait until every index covers
every row; then searches through `Gallery.watchlists.search`, the live match stage itself
(filter to one frozen version, non-expired entries, top-10), one probe per call and 64 per
call, at each `--ef`, by three paths taking turns probe by probe: `all fields` (no floor: every
candidate with its entry in one round trip, what the match stage did before it passed its
threshold), `live, stranger` (the live threshold as floor, probes that match nobody: ids and
scores only) and `live, match` (the floor, probes of enrolled people: plus one read of their
entries). Recall@10 is measured against exact (numpy) search over the same vectors.

`--breakdown` adds bare server requests (no filter; the watchlist clause alone; the version's
whole filter; with the 10 entry fields), and on the server a second round at the highest ef
after taking the Trie index on `watchlist_id` off again (release, drop, load): the collection
as galleries made before the index had it, timed in the same process.

Vectors are realistic: lfw10 face embeddings from our pipeline, each perturbed with Gaussian
noise (cosine ~0.9 to its source photo) and re-normalised; probes are second perturbations of
stored vectors (cosine ~0.95), like a second photo of an enrolled person; strangers are
perturbations of the lfw10 faces far enough (cosine ~0.8) to stay below the live threshold to
every entry (the run prints the closest).

The real server listens on all interfaces, so the benchmark runs itself in a loopback-only
network namespace (re-executing under `unshare --net` when it is not in one); everything,
milvus-lite included, is reached on 127.0.0.1 there, with no relay in the way.
"""

import argparse
import dataclasses
import functools
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import SecretStr
from pymilvus import MilvusClient

from cluster.audit.log import AuditLog
from cluster.audit.sealing import Sealer
from cluster.database.engine import Database
from cluster.gallery.bulk import search_rows
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig, HnswConfig, LiteBackendConfig, ServerBackendConfig
from cluster.gallery.expressions import watchlist_filter, watchlist_search_filter
from cluster.gallery.gallery import Gallery
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.gallery.records import WatchlistEntry, WatchlistVersion
from cluster.gallery.schema import WATCHLIST_COLLECTION, WATCHLIST_FIELDS, WATCHLIST_ID_INDEX
from cluster.logging_setup import configure_logging
from cluster.matching.config import MatchingConfig
from cluster.processes import process_memory
from cluster.vision.config import FaceModelsConfig
from cluster.vision.pipeline import FacePipeline
from loadtest.lfw10_embeddings import embed_lfw10
from loadtest.machine import describe_machine, peak_rss_mib
from loadtest.milvus_server import MilvusServer, bring_loopback_up, in_loopback_only_namespace

STORED_NOISE = 0.043
"""Per-dimension noise of stored vectors: cosine ~0.9 to the source embedding (1/sqrt(1 + 128 s^2))."""
PROBE_NOISE = 0.029
"""Per-dimension noise of probes: cosine ~0.95 to the stored vector they come from."""
STRANGER_NOISE = 0.066
"""Per-dimension noise of strangers' probes: cosine ~0.8 to an lfw10 face, below the live threshold to every entry."""
FLOOR = MatchingConfig().similarity_threshold
"""The live threshold (primary cosine) passed as the floor, as the match stage passes it with one model."""
ENROL_BATCH = 20_000
TOP_K = 10
PROBE_BATCH = 64
WARMUP_CALLS = 5
INDEX_WAIT_S = 3600.0
NAMESPACE_FLAG = "LFR_BENCH_IN_NETNS"


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class PathFigures:
    """One way of searching: its latency for one probe a call and for PROBE_BATCH probes a call."""

    path: str
    single: Latency
    batch: Latency


@dataclass(frozen=True)
class SearchFigures:
    ef: int
    paths: list[PathFigures]
    recall_at_10: float
    trie: bool = True
    """Whether the server's Trie index on watchlist_id was there (False: the collection as it was before it)."""


@dataclass(frozen=True)
class SizeFigures:
    backend: str
    size: int
    insert_per_s: float
    index_wait_s: float
    server_rss_mib: float
    searches: list[SearchFigures]


def perturbed(sources: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    vectors = sources + rng.normal(scale=noise, size=sources.shape).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def rss_mib(pid: int) -> float:
    """Resident memory of a process now, in MiB."""
    return process_memory(pid).resident_bytes / 2**20


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.array(seconds) * 1000, q))


def wait_for_index(gallery: Gallery, size: int) -> float:
    """Flush, then wait until every index of the watchlist (HNSW, and the server's Trie) covers every row; seconds."""
    started = time.monotonic()
    gallery.connection.run(WATCHLIST_COLLECTION, "flush", lambda c: c.flush(WATCHLIST_COLLECTION, timeout=600))
    while time.monotonic() - started < INDEX_WAIT_S:
        infos = gallery.connection.run(
            WATCHLIST_COLLECTION,
            "describe indexes",
            lambda c: [c.describe_index(WATCHLIST_COLLECTION, name) for name in c.list_indexes(WATCHLIST_COLLECTION)],
        )
        if all(int(info.get("total_rows", 0)) == 0 or int(info.get("indexed_rows", 0)) >= size for info in infos):
            return time.monotonic() - started
        time.sleep(1.0)
    raise SystemExit(f"the indexes did not cover {size} rows within {INDEX_WAIT_S} s")


def drop_watchlist_id_index(gallery: Gallery) -> None:
    """Take the server's Trie index off again, to time the collection as galleries made before it had it."""

    def drop(client: MilvusClient) -> None:
        client.release_collection(WATCHLIST_COLLECTION, timeout=600)
        client.drop_index(WATCHLIST_COLLECTION, WATCHLIST_ID_INDEX.name, timeout=600)
        client.load_collection(WATCHLIST_COLLECTION, timeout=600)

    gallery.connection.run(WATCHLIST_COLLECTION, "drop the watchlist_id index", drop)


def enrol(gallery: Gallery, watchlist_id: str, vectors: np.ndarray) -> tuple[float, list[str]]:
    """Enrol every vector; (vectors per second, entry ids in vector order)."""
    entry_ids: list[str] = []
    started = time.perf_counter()
    for start in range(0, len(vectors), ENROL_BATCH):
        entries = [
            WatchlistEntry(f"p{start + i}", "synthetic", "wanted", "bench", "bench", vector)
            for i, vector in enumerate(vectors[start : start + ENROL_BATCH])
        ]
        entry_ids.extend(gallery.watchlists.enrol(watchlist_id, entries).entry_ids)
    return len(vectors) / (time.perf_counter() - started), entry_ids


@dataclass(frozen=True)
class SearchPath:
    """One way of searching and the probes it is timed on (all paths take the same rows of their probes)."""

    name: str
    probes: np.ndarray
    call: Callable[[np.ndarray], object]


def gallery_paths(
    gallery: Gallery, version: WatchlistVersion, matching: np.ndarray, strangers: np.ndarray
) -> list[SearchPath]:
    """The match stage's own calls (`Watchlists.search`), without and with the live threshold as floor.

    `all fields`: every candidate with its entry in one round trip (the match stage before the
    floor was passed; still what a search without `min_similarity` does). `live, stranger` and
    `live, match`: the floor passed, on probes that match nobody (one round trip, ids and scores
    only) and on probes of enrolled people (plus one read of the entries above the floor).
    """
    search = gallery.watchlists.search
    return [
        SearchPath("all fields", matching, lambda probes: search(probes, version, top_k=TOP_K)),
        SearchPath(
            "live, stranger", strangers, lambda probes: search(probes, version, top_k=TOP_K, min_similarity=FLOOR)
        ),
        SearchPath("live, match", matching, lambda probes: search(probes, version, top_k=TOP_K, min_similarity=FLOOR)),
    ]


def server_paths(gallery: Gallery, version: WatchlistVersion, probes: np.ndarray) -> list[SearchPath]:
    """Bare server requests, to see where a search's time goes: the filter's clauses and the returned fields."""
    version_filter = watchlist_search_filter(version, int(time.time()))
    variants = {
        "no filter, no fields": ("", ()),
        "watchlist clause, no fields": (watchlist_filter(version.watchlist_id), ()),
        "version filter, no fields": (version_filter, ()),
        "version filter, 10 fields": (version_filter, WATCHLIST_FIELDS),
    }
    return [
        SearchPath(
            name,
            probes,
            functools.partial(search_rows_of, gallery, expression=expression, fields=fields, operation=name),
        )
        for name, (expression, fields) in variants.items()
    ]


def search_rows_of(gallery: Gallery, probes: np.ndarray, expression: str, fields: tuple[str, ...],
                   operation: str) -> object:  # fmt: skip
    return search_rows(
        gallery.connection, WATCHLIST_COLLECTION, probes, expression, TOP_K, fields, gallery.config.consistency,
        operation,
    )  # fmt: skip


def measure_paths(paths: list[SearchPath], batch_queries: int) -> list[PathFigures]:
    """Each path's latency, the paths taking turns probe by probe so that load on the machine falls on all alike."""
    count = min(len(path.probes) for path in paths)
    for row in range(WARMUP_CALLS):
        for path in paths:
            path.call(path.probes[row : row + 1])
    single: dict[str, list[float]] = {path.name: [] for path in paths}
    batched: dict[str, list[float]] = {path.name: [] for path in paths}
    for row in range(count):
        for path in paths:
            started = time.perf_counter()
            path.call(path.probes[row : row + 1])
            single[path.name].append(time.perf_counter() - started)
    rng = np.random.default_rng(1)
    for _ in range(batch_queries):
        rows = rng.choice(count, PROBE_BATCH, replace=False)
        for path in paths:
            started = time.perf_counter()
            path.call(path.probes[rows])
            batched[path.name].append(time.perf_counter() - started)
    return [PathFigures(path.name, latency(single[path.name]), latency(batched[path.name])) for path in paths]


def latency(seconds: list[float]) -> Latency:
    return Latency(percentile_ms(seconds, 50), percentile_ms(seconds, 99))


def recall_at_10(gallery: Gallery, version: WatchlistVersion, probes: np.ndarray, exact: np.ndarray,
                 index_of: dict[str, int]) -> float:  # fmt: skip
    """Share of the exact top-10 that the search finds."""
    hits = 0
    for row, candidates in enumerate(gallery.watchlists.search(probes, version, top_k=TOP_K)):
        hits += len({index_of[c.entry.entry_id] for c in candidates} & set(exact[row].tolist()))
    return hits / (len(probes) * TOP_K)


def exact_top_k(stored: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Indices of the 10 most similar stored vectors per probe (exact cosine on unit vectors)."""
    scores = probes @ stored.T
    top = np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]
    return top


def run_size(backend: str, size: int, bases: np.ndarray, args: argparse.Namespace, work: Path) -> SizeFigures:
    rng = np.random.default_rng(size)
    stored = perturbed(bases[rng.integers(len(bases), size=size)], STORED_NOISE, rng)
    probes = perturbed(stored[rng.integers(size, size=args.queries)], PROBE_NOISE, rng)
    strangers = perturbed(bases[rng.integers(len(bases), size=args.queries)], STRANGER_NOISE, rng)
    exact = exact_top_k(stored, probes)
    closest = float(max((strangers[start : start + 20] @ stored.T).max() for start in range(0, len(strangers), 20)))
    print(f"    {size:,d} vectors: the strangers' closest entry is at cosine {closest:.3f} (floor {FLOOR})")
    data = work / f"{backend}-{size}"
    server = MilvusServer(data / "server", secrets.token_urlsafe(16)) if backend == "milvus" else None
    embedded = None
    if server is not None:
        server.start()
        assert server.pids is not None
        backend_config = ServerBackendConfig(
            type="milvus", uri=server.uri, token=SecretStr(server.token), index=HnswConfig(ef=max(args.ef))
        )
        server_pid = server.pids.server
    else:
        backend_config = LiteBackendConfig(data_dir=data / "lite", index=HnswConfig(ef=max(args.ef)))
    config = GalleryConfig(backend=backend_config, top_k=TOP_K)
    data.mkdir(parents=True, exist_ok=True)
    records = Database(data / "records.sqlite3")
    AuditLog(records, Sealer(secrets.token_bytes(32)))  # brings the scratch records database to the current schema
    catalogue = Catalogue(records)
    try:
        gallery = Gallery.open(config, catalogue)
        if server is None:
            embedded = EmbeddedMilvus(backend_config, config.timeouts)
            server_pid = embedded.running().pid
        watchlist = gallery.watchlists.create("bench", "bench", "benchmark", "bench", int(time.time()) + 86400)
        insert_per_s, entry_ids = enrol(gallery, watchlist.watchlist_id, stored)
        index_wait_s = wait_for_index(gallery, size)
        version = gallery.watchlists.freeze(watchlist.watchlist_id)
        index_of = {entry_id: i for i, entry_id in enumerate(entry_ids)}
        searches = []
        for ef in args.ef:
            endpoint = dataclasses.replace(gallery.endpoint, hnsw=HnswConfig(ef=ef))
            with Gallery(config, endpoint, catalogue) as at_ef:
                paths = gallery_paths(at_ef, version, probes, strangers)
                if args.breakdown:
                    paths += server_paths(at_ef, version, probes)
                timed = measure_paths(paths, args.batch_queries)
                searches.append(SearchFigures(ef, timed, recall_at_10(at_ef, version, probes, exact, index_of)))
        if args.breakdown and server is not None:
            drop_watchlist_id_index(gallery)
            endpoint = dataclasses.replace(gallery.endpoint, hnsw=HnswConfig(ef=max(args.ef)))
            with Gallery(config, endpoint, catalogue) as at_ef:
                paths = gallery_paths(at_ef, version, probes, strangers) + server_paths(at_ef, version, probes)
                timed = measure_paths(paths, args.batch_queries)
                recall = recall_at_10(at_ef, version, probes, exact, index_of)
                searches.append(SearchFigures(max(args.ef), timed, recall, trie=False))
        figures = SizeFigures(backend, size, insert_per_s, index_wait_s, rss_mib(server_pid), searches)
        gallery.close()
    finally:
        records.close()
        if server is not None:
            server.stop()
        if embedded is not None:
            embedded.stop()
    return figures


def report(figures: SizeFigures) -> None:
    print(
        f"{figures.backend:11s} {figures.size:>9,d} vectors: insert {figures.insert_per_s:,.0f} vectors/s,"
        f" index ready {figures.index_wait_s:.1f} s after the last insert,"
        f" server RSS {figures.server_rss_mib:,.0f} MiB, load average {os.getloadavg()[0]:.1f}"
    )
    for search in figures.searches:
        index = "" if search.trie else ", without the Trie index"
        print(f"    ef {search.ef}{index}: recall@10 {search.recall_at_10:.3f}")
        for path in search.paths:
            print(
                f"      {path.path:28s} 1 probe p50 {path.single.p50_ms:6.2f} ms p99 {path.single.p99_ms:6.2f} ms |"
                f" {PROBE_BATCH} probes p50 {path.batch.p50_ms:6.2f} ms p99 {path.batch.p99_ms:6.2f} ms"
            )
        paths = {path.path: path for path in search.paths}
        print_ratio("all fields / live, stranger", paths["all fields"], paths["live, stranger"])
    untried = [search for search in figures.searches if not search.trie]
    for before in untried:
        after = next(s for s in figures.searches if s.trie and s.ef == before.ef)
        print_ratio(
            f"ef {before.ef}: all fields without the Trie / live, stranger with it",
            {p.path: p for p in before.paths}["all fields"],
            {p.path: p for p in after.paths}["live, stranger"],
        )
    sys.stdout.flush()


def print_ratio(what: str, before: PathFigures, after: PathFigures) -> None:
    print(
        f"      {what}: 1 probe p50 {before.single.p50_ms / after.single.p50_ms:.2f}x"
        f" p99 {before.single.p99_ms / after.single.p99_ms:.2f}x, {PROBE_BATCH} probes"
        f" p50 {before.batch.p50_ms / after.batch.p50_ms:.2f}x p99 {before.batch.p99_ms / after.batch.p99_ms:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", choices=["milvus-lite", "milvus"], default=["milvus-lite", "milvus"])
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--queries", type=int, default=200, help="Single-probe searches (and recall probes).")
    parser.add_argument("--batch-queries", type=int, default=50, help="Searches of 64 probes.")
    parser.add_argument(
        "--breakdown", action="store_true", help="Also time bare server requests: each filter clause, with fields."
    )
    args = parser.parse_args()
    if not in_loopback_only_namespace():
        if os.environ.get(NAMESPACE_FLAG):
            raise SystemExit("could not enter a loopback-only network namespace")
        os.environ[NAMESPACE_FLAG] = "1"
        unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
        os.execvp("unshare", [*unshare, "--", sys.executable, "-m", "loadtest.bench_gallery", *sys.argv[1:]])
    bring_loopback_up()
    configure_logging("warning")
    print(describe_machine())
    started = time.perf_counter()
    bases = embed_lfw10(FacePipeline(FaceModelsConfig(device="cpu")))[0]
    print(f"{len(bases)} lfw10 embeddings in {time.perf_counter() - started:.1f} s; bench process peak RSS"
          f" {peak_rss_mib():,.0f} MiB")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-gallery-") as work:
        for size in args.sizes:
            for backend in args.backends:
                report(run_size(backend, size, bases, args, Path(work)))


if __name__ == "__main__":
    main()
