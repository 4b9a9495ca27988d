"""Load test reports built from figures, for the tests of the comparison and the HTML page (no run needed)."""

from cluster.loadtesting.measurements import Accuracy, Drops, Percentiles, RoleUsage, StepFigures
from cluster.loadtesting.ramp import RampPlan
from cluster.loadtesting.report import CrowdSummary, LoadReport, Machine
from cluster.loadtesting.saturation import SaturationRule

MIB = 1024 * 1024


def accuracy(true_alerts: int = 3, false_alerts: int = 0, seen: int = 3, alerted: int = 3) -> Accuracy:
    alerts = true_alerts + false_alerts
    return Accuracy(
        alerts=alerts,
        true_alerts=true_alerts,
        false_alerts=false_alerts,
        watchlist_people_seen=seen,
        watchlist_visits=seen,
        people_alerted=alerted,
        people_missed=tuple(f"person_{n}" for n in range(seen - alerted)),
        alerts_per_person=true_alerts / alerted if alerted else 0.0,
        precision=true_alerts / alerts if alerts else 1.0,
        recall=alerted / seen if seen else 1.0,
        streets=1,
    )


def step(
    index: int,
    cameras: int,
    frames_per_s: float,
    latency_s: float = 0.2,
    fps: float = 5.0,
    dropped: int = 0,
    searches: tuple[float, ...] = (0.004, 0.005, 0.006),
) -> StepFigures:
    """A step whose frame latencies spread around `latency_s` (so its percentiles scale with it)."""
    seconds = 10.0
    offered = int(cameras * fps * seconds)
    latencies = [latency_s * (0.5 + n / 100) for n in range(101)]
    return StepFigures(
        index=index,
        cameras=cameras,
        sample_fps=fps,
        seconds=seconds,
        frames_per_s=frames_per_s,
        faces_per_s=2 * frames_per_s,
        drops=Drops(offered=offered, full=dropped, stale=0, at_camera=0, failed=0, errors=0),
        frame_latency=Percentiles.of(latencies),
        alert_latency=Percentiles.of([4 * latency_s, 5 * latency_s, 6 * latency_s]),
        gallery_search=Percentiles.of(searches),
        roles=(
            RoleUsage(
                role="face service replicas", processes=1, cpu_cores=0.9, resident_bytes=900 * MIB, own_bytes=800 * MIB
            ),
            RoleUsage(
                role="camera actors",
                processes=cameras,
                cpu_cores=0.1 * cameras,
                resident_bytes=cameras * 200 * MIB,
                own_bytes=cameras * 150 * MIB,
            ),
        ),
        accuracy=accuracy(),
    )


def report(steps: tuple[StepFigures, ...], run_accuracy: Accuracy | None = None) -> LoadReport:
    return LoadReport(
        command=("lfr", "loadtest", "crowd"),
        started_at=1_800_000_000.0,
        wall_seconds=120.0,
        machine=Machine(cores=2, platform="Linux test x86_64", python="3.11", load_start=1.5, load_end=2.0),
        crowd=CrowdSummary(
            folder="/tmp/crowd", cameras=4, seconds=10, fps=10, watchlist=("a", "b", "c"), enrolled_photos=6
        ),
        plan=RampPlan.of([step.cameras for step in steps], [steps[0].sample_fps], 10.0, 2.0),
        saturation=SaturationRule(),
        steps=steps,
        accuracy=run_accuracy or accuracy(),
    )
