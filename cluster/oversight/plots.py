"""The report's plots as base64 PNG for report.html, drawn on matplotlib's Agg canvas (no pyplot: no global state).

Where a plot has nothing to show (no alert decided, no rate to compare) it is left out and the
page says so in words instead: an empty chart reads as a zero.
"""

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cluster.evaluation.plots import plot_text
from cluster.gallery.attributes import NOT_RECORDED
from cluster.oversight.report import BreakdownOut, DeploymentReport, OutcomesOut

DPI = 100
COLOURS = {"confirmed": "tab:blue", "rejected": "tab:red", "not adjudicated": "0.7"}


def report_plots(report: DeploymentReport) -> dict[str, str]:
    """Each plot that has something to show, by name, as base64 PNG (a breakdown only where some alerted person's
    value was recorded: all of them in "not recorded" is said as well by its table)."""
    plots = {"outcomes": _png(_outcomes(report))}
    if report.false_alert_rate.observed is not None:
        plots["false_alert_rate"] = _png(_false_alert_rate(report))
    if report.adjudication_time.seconds:
        plots["adjudication_time"] = _png(_adjudication_time(report))
    drawn = [
        b for b in report.breakdowns if any(group.outcomes.alerts for group in b.groups if group.group != NOT_RECORDED)
    ]
    if drawn:
        plots["breakdowns"] = _png(_breakdowns(drawn))
    return plots


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _stacked(axes, labels: list[str], rows: list[OutcomesOut]) -> None:
    """Horizontal bars of confirmed, rejected and not adjudicated alerts, one bar per label."""
    positions = np.arange(len(labels))
    left = np.zeros(len(labels))
    for name in COLOURS:
        counts = np.array(
            [
                {"confirmed": r.confirmed, "rejected": r.rejected, "not adjudicated": r.not_adjudicated}[name]
                for r in rows
            ]
        )
        axes.barh(positions, counts, left=left, color=COLOURS[name], label=name)
        left += counts
    axes.set_yticks(positions, [plot_text(label) for label in labels])
    axes.invert_yaxis()
    axes.xaxis.get_major_locator().set_params(integer=True)


def _outcomes(report: DeploymentReport) -> Figure:
    labels = ["all cameras", *(camera.camera_id for camera in report.cameras)]
    rows = [report.outcomes, *(camera.outcomes for camera in report.cameras)]
    figure = Figure(figsize=(7.5, 0.45 * len(labels) + 1.4), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    _stacked(axes, labels, rows)
    axes.set_xlabel("alerts (an alert seen by several cameras counts for each)")
    axes.set_title("Outcomes of alerts")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return figure


def _false_alert_rate(report: DeploymentReport) -> Figure:
    """The expected FPIR against the observed rate with its interval (and the rate if every undecided alert were
    false), on a log axis: the rates are small and differ by factors."""
    rates = report.false_alert_rate
    figure = Figure(figsize=(7.5, 2.8), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    shown = [("observed", rates.observed, "tab:red"), ("if all undecided were false", rates.if_undecided_false, "0.5")]
    drawn = [rate for _, rate, _ in shown if rate is not None]
    # The left edge: below the expected rate, every lower bound above 0, and a tenth of one event in the sample.
    floor = min([rates.expected_fpir / 10, *(r.low / 2 for r in drawn if r.low > 0), *(0.1 / r.total for r in drawn)])
    for row, (label, rate, colour) in enumerate(shown):
        if rate is None:
            continue
        point = max(rate.rate, floor)
        axes.errorbar(
            [point],
            [row],
            xerr=[[point - max(rate.low, floor)], [max(rate.high - point, 0.0)]],
            fmt="o",
            color=colour,
            capsize=4,
            label=f"{label}: {rate.count} of {rate.total} searches",
        )
    axes.axvline(rates.expected_fpir, color="0.2", linestyle=":", label=f"expected FPIR {rates.expected_fpir:.2g}")
    axes.set_xscale("log")
    axes.set_xlim(floor, 1.0)
    axes.set_yticks(range(len(shown)), [label for label, _, _ in shown])
    axes.set_ylim(-0.6, len(shown) - 0.4)
    axes.invert_yaxis()
    axes.set_xlabel("false matches per watchlist search (0 is drawn at the left edge)")
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3, frameon=False)
    return figure


def _adjudication_time(report: DeploymentReport) -> Figure:
    """Share of decided alerts decided within each time, with the median and 90th percentile marked."""
    seconds = np.array(report.adjudication_time.seconds)
    figure = Figure(figsize=(7.5, 3), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    shares = np.arange(1, len(seconds) + 1) / len(seconds)
    axes.step(seconds, shares, where="post", color="tab:blue")
    axes.plot(seconds, shares, "o", color="tab:blue", markersize=4)
    spread = report.adjudication_time
    for name, value in (("median", spread.p50_s), ("90th percentile", spread.p90_s)):
        if value is not None:
            axes.axvline(value, color="0.4", linestyle=":")
            axes.text(value, 0.02, f" {name} {value:.0f} s", rotation=90, va="bottom", fontsize=7)
    axes.set_xlim(left=0)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("seconds from alert to an officer's confirmation or rejection")
    axes.set_ylabel("share of decided alerts")
    axes.set_title(f"Time to adjudication ({len(seconds)} decided)")
    return figure


def _breakdowns(breakdowns: list[BreakdownOut]) -> Figure:
    figure = Figure(figsize=(7.5, 1.2 + sum(0.35 * len(b.groups) + 0.6 for b in breakdowns)), dpi=DPI)
    figure.set_layout_engine("constrained")
    heights = [len(b.groups) + 1 for b in breakdowns]
    grid = figure.add_gridspec(len(breakdowns), 1, height_ratios=heights)
    for index, found in enumerate(breakdowns):
        axes = figure.add_subplot(grid[index])
        _stacked(axes, [g.group for g in found.groups], [g.outcomes for g in found.groups])
        axes.set_title(f"Alerts by the alerted person's {found.attribute.replace('_', ' ')}", fontsize=9)
        if index == 0:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return figure
