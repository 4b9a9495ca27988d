"""report.html: a deployment's report on one self-contained page, for a person to read (report.json is for tools).

Filled in with Jinja2 (autoescaped) from `templates/deployment_report.html.j2`, with the plots
embedded as base64 PNG; nothing is fetched from elsewhere, so it opens the same offline, attached
to a letter or printed (the browser's "print to PDF" makes the PDF).
"""

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cluster.oversight.plots import report_plots
from cluster.oversight.report import DeploymentReport, RateOut

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "deployment_report.html.j2"


def render_html(report: DeploymentReport) -> str:
    """The page for `report` (see the module docstring)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), keep_trailing_newline=True
    )
    environment.filters["when"] = _when
    environment.filters["rate"] = _rate
    environment.filters["count"] = _count
    return environment.get_template(TEMPLATE).render(report=report, plots=report_plots(report))


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(value: int | None) -> str:
    return "not recorded" if value is None else f"{value:,}"


def _rate(rate: RateOut | None) -> str:
    """'2 of 1,000 (0.2 %; 95 % interval 0.055-0.72 %)', or a dash when there is nothing to divide by."""
    if rate is None:
        return "-"
    return (
        f"{rate.count:,} of {rate.total:,} ({_percent(rate.rate)}; {rate.confidence:.0%} interval"
        f" {_percent(rate.low, unit=False)}-{_percent(rate.high)})"
    )


def _percent(value: float, unit: bool = True) -> str:
    text = f"{100 * value:.2g}" if value < 0.01 else f"{100 * value:.1f}"
    return f"{text} %" if unit else text
