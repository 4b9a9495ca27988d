"""Fusion throughput: `Fuser.add` sightings per second with 1k, 10k and 100k alerts open.

    python -m loadtest.bench_fusion [--alerts 1000 10000 100000] [--alerts-per-person 1 10]

For each size it raises that many alerts through `add` (the new-alert path; the rate is over
the whole fill, from 0 to N open), then times sightings that each fuse into a random open
alert (the usual live path: the same person on a neighbouring camera, 155 s later, similar
embedding): two per alert, at most `--max-merges`, so alerts end with about three sightings
as a person crossing a few cameras would leave. Then it times `restore` of all alerts into a
fresh Fuser (a Coordinator restart). Rates are given by wall clock and by this process's CPU
time: on a shared machine the second is the steadier figure.

With several alerts per person (look-alike embeddings under one person id), every `add`
compares against all of that person's open alerts. Sightings are built before the clock
starts; embeddings are random unit vectors (fusion only takes dot products). 64 cameras in an
8x8 grid, 120 s walk between neighbours. Target: >= 5,000 sightings/s at every size.
"""

import argparse
import gc
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from cluster.alerts.model import Alert, Sighting
from cluster.fusion.config import FusionConfig
from cluster.fusion.fuser import Fuser, FusionKind
from cluster.fusion.topology import CameraTopology
from cluster.logging_setup import configure_logging
from loadtest.machine import describe_machine

GRID = 8
WALK_S = 120.0
HOP_S = 155.0
SPAN_S = 5.0
NOISE = 0.01
"""Per-dimension noise on a person's embedding: cosine about 0.99 between two of his sightings."""
TARGET = 5_000.0
MERGES_PER_ALERT = 2
MEMORY_ALERTS = 10_000


def grid_topology() -> CameraTopology:
    ids = [f"cam_{r}_{c}" for r in range(GRID) for c in range(GRID)]
    walking = {}
    for r in range(GRID):
        for c in range(GRID):
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < GRID and c + dc < GRID:
                    walking[(f"cam_{r}_{c}", f"cam_{r + dr}_{c + dc}")] = WALK_S
                    walking[(f"cam_{r + dr}_{c + dc}", f"cam_{r}_{c}")] = WALK_S
    return CameraTopology(ids, walking)


def neighbour_of(camera: str, rng: np.random.Generator) -> str:
    _, r, c = camera.split("_")
    options = [(int(r) + dr, int(c) + dc) for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))]
    options = [(a, b) for a, b in options if 0 <= a < GRID and 0 <= b < GRID]
    a, b = options[rng.integers(len(options))]
    return f"cam_{a}_{b}"


@dataclass
class Track:
    """Where one alert's person was last seen, so the next sighting of him is plausible."""

    person: int
    variant: np.ndarray
    camera: str
    last_seen: float


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def make_sighting(number: int, track: Track, rng: np.random.Generator, start: float) -> Sighting:
    embedding = unit(track.variant + rng.normal(0.0, NOISE, track.variant.shape))
    return Sighting(
        sighting_id=f"{track.camera}:s{number}",
        camera_id=track.camera,
        person_id=f"person_{track.person}",
        watchlist_id="wl_bench",
        similarity=0.95,
        first_seen=start,
        last_seen=start + SPAN_S,
        frames=10,
        embedding=embedding,
    )


def make_fuser(topology: CameraTopology) -> Fuser:
    config = FusionConfig(open_window_s=7 * 86_400.0)
    return Fuser(topology, config, deployment_id="bench", threshold=0.92, model="dlib-resnet-v1")


@dataclass(frozen=True)
class Figures:
    alerts: int
    alerts_per_person: int
    merges: int
    new_alert_rate: float
    new_alert_cpu_rate: float
    merge_rate: float
    merge_cpu_rate: float
    restore_s: float


def scenario(alerts: int, merges: int, per_person: int, seed: int) -> tuple[list[Sighting], list[Sighting]]:
    """Sightings that raise `alerts` alerts, in time order, and `merges` later ones that each join one."""
    rng = np.random.default_rng(seed)
    topology = grid_topology()
    people = max(1, alerts // per_person)
    variants = unit(rng.normal(size=(alerts, 128)))
    cameras = sorted(topology.camera_ids)
    tracks = [
        Track(i % people, variants[i], cameras[rng.integers(len(cameras))], float(rng.uniform(0, 3600)))
        for i in range(alerts)
    ]
    fills = [make_sighting(i, t, rng, t.last_seen - SPAN_S) for i, t in enumerate(tracks)]
    fills.sort(key=lambda s: s.first_seen)
    chosen = rng.integers(alerts, size=merges)
    onward = []
    for number, index in enumerate(chosen.tolist()):
        track = tracks[index]
        track.camera = neighbour_of(track.camera, rng)
        start = track.last_seen + HOP_S
        onward.append(make_sighting(alerts + number, track, rng, start))
        track.last_seen = start + SPAN_S
    return fills, onward


def run(alerts: int, merges: int, per_person: int, seed: int) -> Figures:
    """Fill a Fuser with `alerts` alerts, merge `merges` sightings into them, restore them elsewhere."""
    fills, onward = scenario(alerts, merges, per_person, seed)
    topology = grid_topology()
    fuser = make_fuser(topology)
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    outcomes = [fuser.add(s) for s in fills]
    fill_s, fill_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    if any(o.kind is not FusionKind.NEW_ALERT for o in outcomes) or fuser.open_alerts != alerts:
        raise SystemExit(f"fill: expected {alerts} new alerts, got {fuser.open_alerts} open")
    started, cpu_started = time.perf_counter(), time.process_time()
    merged = [fuser.add(s) for s in onward]
    merge_s, merge_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    unmerged = sum(o.kind is not FusionKind.MERGED for o in merged)
    if unmerged or fuser.open_alerts != alerts:
        raise SystemExit(f"merge: {unmerged} of {merges} sightings did not merge; {fuser.open_alerts} open")
    stored: list[Alert] = [fuser.alert(o.alert.alert_id) for o in outcomes]
    del fuser, outcomes, merged
    gc.collect()
    fresh = make_fuser(topology)
    started = time.perf_counter()
    fresh.restore(stored)
    restore_s = time.perf_counter() - started
    if fresh.open_alerts != alerts:
        raise SystemExit(f"restore: {fresh.open_alerts} open of {alerts}")
    return Figures(
        alerts=alerts,
        alerts_per_person=per_person,
        merges=merges,
        new_alert_rate=alerts / fill_s,
        new_alert_cpu_rate=alerts / fill_cpu_s,
        merge_rate=merges / merge_s,
        merge_cpu_rate=merges / merge_cpu_s,
        restore_s=restore_s,
    )


def fuser_bytes_per_alert(seed: int) -> tuple[float, float]:
    """Bytes the Fuser adds per alert of three sightings (sightings excluded), and bytes per sighting."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fills, onward = scenario(MEMORY_ALERTS, MERGES_PER_ALERT * MEMORY_ALERTS, 1, seed)
    built = tracemalloc.get_traced_memory()[0]
    fuser = make_fuser(grid_topology())
    for sighting in [*fills, *onward]:
        fuser.add(sighting)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (held - built) / MEMORY_ALERTS, (built - before) / (len(fills) + len(onward))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--max-merges", type=int, default=20_000, help="Most timed merging sightings per size.")
    parser.add_argument("--alerts-per-person", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    configure_logging("warning")
    print(describe_machine())
    print(
        "| open alerts | alerts per person | new alerts/s, wall (CPU) | merges timed | merges/s, wall (CPU)"
        " | restore | target (wall) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for per_person in args.alerts_per_person:
        for alerts in args.alerts:
            f = run(alerts, min(args.max_merges, MERGES_PER_ALERT * alerts), per_person, args.seed)
            met = "met" if min(f.new_alert_rate, f.merge_rate) >= TARGET else "MISSED"
            print(
                f"| {f.alerts:,} | {f.alerts_per_person} | {f.new_alert_rate:,.0f} ({f.new_alert_cpu_rate:,.0f}) |"
                f" {f.merges:,} | {f.merge_rate:,.0f} ({f.merge_cpu_rate:,.0f}) | {f.restore_s:.2f} s | {met} |",
                flush=True,
            )
    per_alert, per_sighting = fuser_bytes_per_alert(args.seed)
    print(
        f"memory: the Fuser holds {per_alert / 1024:.1f} KiB per alert of 3 sightings beyond the sightings,"
        f" {per_sighting / 1024:.1f} KiB per sighting without a crop ({MEMORY_ALERTS:,} alerts, tracemalloc)"
    )


if __name__ == "__main__":
    main()
