"""The evaluation report's figures as PNG bytes, drawn on matplotlib's Agg canvas.

No pyplot: it keeps global figure state and chooses a backend at import, neither of which a library
called from a CLI (or from tests running side by side) should touch. Outside text drawn into a figure
(system and group names) goes through `plot_text`, so a "$" is shown, not parsed as mathtext.
"""

import io
from typing import TypedDict

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cluster.evaluation.report import EvaluationReport, SystemResult

DPI = 100
UNOBSERVABLE_SHADE = "0.88"


class LineStyle(TypedDict):
    """Keyword arguments of a matplotlib line."""

    color: str
    linestyle: str
    linewidth: float


TARGET_LINE = LineStyle(color="0.35", linestyle=":", linewidth=1.0)


def plot_text(text: str) -> str:
    """Outside text made literal for matplotlib: "$" escaped (mathtext), and no leading "_" (which
    matplotlib takes to mean "leave out of the legend")."""
    escaped = text.replace("$", r"\$")
    return f" {escaped}" if escaped.startswith("_") else escaped


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def det_png(report: EvaluationReport) -> bytes:
    """FNIR against FPIR for every system on log axes, with the stated FPIR targets marked and the FPIRs this
    sample cannot observe (below 1 / non-mated probes) shaded."""
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axes = figure.add_subplot()
    floor = 1 / report.counts.nonmated
    left = min(*report.fpirs, floor) / 2
    axes.axvspan(left, floor, color=UNOBSERVABLE_SHADE, label=f"FPIR < 1/{report.counts.nonmated}: not observable")
    for target in report.fpirs:
        axes.axvline(target, **TARGET_LINE)
    for system in report.systems:
        # A point with FPIR or FNIR of 0 has no place on a log axis.
        drawn = (system.det.fpir > 0) & (system.det.fnir > 0)
        axes.plot(system.det.fpir[drawn], system.det.fnir[drawn], label=plot_text(system.name))
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(left, 1.0)
    axes.set_ylim(0.5 / report.counts.mated, 1.0)
    axes.set_xlabel("FPIR (share of non-mated probes raising an alarm)")
    axes.set_ylabel("FNIR = 1 - TPIR")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower left")
    return _png(figure)


def histogram_png(system: SystemResult) -> bytes:
    """Mated probes' own-person scores against non-mated probes' best scores, log counts, with the system's
    threshold for each FPIR target marked."""
    histogram = system.histogram
    figure = Figure(figsize=(7.5, 3.2), layout="constrained")
    axes = figure.add_subplot()
    axes.stairs(histogram.nonmated, histogram.edges, label="non-mated probes: best score", color="tab:red")
    axes.stairs(histogram.mated, histogram.edges, label="mated probes: own person's score", color="tab:blue")
    for estimate in system.estimates:
        axes.axvline(estimate.threshold, **TARGET_LINE)
        axes.text(
            estimate.threshold,
            0.98,
            f" FPIR {estimate.fpir_target:g}",
            transform=axes.get_xaxis_transform(),
            rotation=90,
            va="top",
            fontsize=7,
        )
    axes.set_yscale("log")
    axes.set_ylim(0.7, 2.0 * max(1, histogram.mated.max(initial=0), histogram.nonmated.max(initial=0)))
    axes.set_title(plot_text(system.name))
    axes.set_xlabel("score")
    axes.set_ylabel("probes")
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def groups_png(report: EvaluationReport) -> bytes:
    """FPIR and FNIR per group, one bar per system, at each system's threshold for the breakdown target."""
    breakdowns = [(system, system.groups) for system in report.systems if system.groups is not None]
    if not breakdowns or report.group_fpir is None:
        raise ValueError("groups_png: the report has no group breakdown; give the evaluation per-probe groups")
    groups = [row.group for row in breakdowns[0][1].rows]
    positions = np.arange(len(groups))
    width = 0.8 / len(breakdowns)
    figure = Figure(figsize=(max(6.0, 0.5 * len(groups) * len(breakdowns) + 2.0), 6), layout="constrained")
    fpir_axes, fnir_axes = figure.subplots(2, 1, sharex=True)
    for index, (system, breakdown) in enumerate(breakdowns):
        rows = breakdown.rows
        offset = positions - 0.4 + width * (index + 0.5)
        fpir = [np.nan if row.fpir is None else row.fpir for row in rows]
        fnir = [np.nan if row.tpir is None else 1.0 - row.tpir for row in rows]
        fpir_axes.bar(offset, fpir, width, label=plot_text(system.name))
        fnir_axes.bar(offset, fnir, width, label=plot_text(system.name))
    fpir_axes.axhline(report.group_fpir, **TARGET_LINE, label=f"target FPIR {report.group_fpir:g}")
    fpir_axes.set_ylabel("FPIR")
    fpir_axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fnir_axes.set_ylabel("FNIR = 1 - TPIR")
    fnir_axes.set_xticks(positions, [plot_text(group) for group in groups], rotation=30, ha="right")
    return _png(figure)
