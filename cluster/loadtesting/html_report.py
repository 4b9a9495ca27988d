"""report.html: the load test on one self-contained page, for a person to read (report.json is for tools).

The plots are drawn with matplotlib and embedded as base64 PNG, the page is filled in with Jinja2
(autoescaped) from `templates/report.html.j2`, and nothing on it is fetched from elsewhere: no
script, font or stylesheet from another address, so it opens the same offline or attached to a CI run.
"""

import base64
import io
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cluster.loadtesting.measurements import StepFigures
from cluster.loadtesting.report import LoadReport

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
DPI = 100
MIB = 1024 * 1024


def render_html(report: LoadReport) -> str:
    """The page for `report` (see the module docstring)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), keep_trailing_newline=True
    )
    roles = sorted({usage.role for step in report.steps for usage in step.roles})
    return environment.get_template(TEMPLATE).render(
        report=report,
        started=datetime.fromtimestamp(report.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        saturated=report.saturated_at,
        roles=roles,
        mib=MIB,
        plots={
            "throughput": _png(_throughput_and_latency(report)),
            "cdf": _png(_latency_cdf(report)),
            "drops": _png(_drops(report)),
            "resources": _png(_resources(report, roles)),
        },
    )


def write_html(report: LoadReport, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")


def _label(step: StepFigures) -> str:
    return f"{step.cameras} cam\n{step.sample_fps:g} fps"


def _png(figure: Figure) -> str:
    """The figure as a base64 PNG, for an <img src="data:..."> (no metadata naming matplotlib's web site)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _throughput_and_latency(report: LoadReport) -> Figure:
    figure = Figure(figsize=(11, 4), dpi=DPI, layout="constrained")
    throughput, latency = figure.subplots(1, 2)
    x = list(range(len(report.steps)))
    labels = [_label(step) for step in report.steps]
    throughput.plot(x, [s.frames_per_s for s in report.steps], "o-", label="frames/s")
    throughput.plot(x, [s.faces_per_s for s in report.steps], "s-", label="faces/s")
    throughput.plot(x, [s.offered_fps for s in report.steps], ":", color="grey", label="frames/s offered")
    throughput.set_title("Throughput")
    for name, read in (
        ("frame p50", lambda s: s.frame_latency.p50),
        ("frame p95", lambda s: s.frame_latency.p95),
        ("frame p99", lambda s: s.frame_latency.p99),
        ("face-to-alert p99", lambda s: s.alert_latency.p99),
    ):
        latency.plot(x, [read(s) if read(s) is not None else float("nan") for s in report.steps], "o-", label=name)
    latency.set_title("Latency (s)")
    for axes in (throughput, latency):
        axes.set_xticks(x, labels)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        axes.set_ylim(bottom=0)
    saturated = report.saturated_at
    if saturated is not None:
        for axes in (throughput, latency):
            axes.axvline(saturated.index, color="red", alpha=0.4, linestyle="--")
    return figure


def _latency_cdf(report: LoadReport) -> Figure:
    figure = Figure(figsize=(6, 4), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    for step in report.steps:
        quantiles = step.frame_latency.quantiles
        if quantiles:
            shares = [index / (len(quantiles) - 1) for index in range(len(quantiles))]
            axes.plot(quantiles, shares, label=_label(step).replace("\n", " @ "))
    axes.set_xlabel("frame-to-result latency (s)")
    axes.set_ylabel("share of frames")
    axes.set_title("Latency CDF per step")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return figure


def _drops(report: LoadReport) -> Figure:
    figure = Figure(figsize=(6, 4), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    x = list(range(len(report.steps)))
    bottom = [0.0] * len(x)
    for cause in ("full", "stale", "at_camera", "failed", "errors"):
        values = [float(getattr(step.drops, cause)) for step in report.steps]
        axes.bar(x, values, bottom=bottom, label=cause.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_xticks(x, [_label(step) for step in report.steps])
    axes.set_ylabel("frames dropped in the step")
    axes.set_title("Drops by cause")
    axes.legend(fontsize="small")
    return figure


def _resources(report: LoadReport, roles: list[str]) -> Figure:
    figure = Figure(figsize=(11, 4), dpi=DPI, layout="constrained")
    cpu, memory = figure.subplots(1, 2)
    x = list(range(len(report.steps)))
    cpu_bottom = [0.0] * len(x)
    memory_bottom = [0.0] * len(x)
    for role in roles:
        usages = [step.role(role) for step in report.steps]
        cores = [u.cpu_cores if u else 0.0 for u in usages]
        mib = [u.own_bytes / MIB if u else 0.0 for u in usages]
        cpu.bar(x, cores, bottom=cpu_bottom, label=role)
        memory.bar(x, mib, bottom=memory_bottom, label=role)
        cpu_bottom = [b + v for b, v in zip(cpu_bottom, cores, strict=True)]
        memory_bottom = [b + v for b, v in zip(memory_bottom, mib, strict=True)]
    cpu.axhline(report.machine.cores, color="grey", linestyle=":")
    cpu.set_title(f"CPU per role (cores; machine has {report.machine.cores})")
    memory.set_title("Own memory per role (MiB, at the step's end)")
    for axes in (cpu, memory):
        axes.set_xticks(x, [_label(step) for step in report.steps])
    memory.legend(fontsize="x-small", loc="upper left")
    return figure
